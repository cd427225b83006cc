package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/schema"
	"github.com/switchd/switchd/policies"
)

// fileSchema returns the JSON Schema of a site or a policy file.
func fileSchema(kind string) (map[string]any, error) {
	switch kind {
	case "site":
		return schema.Generate(config.SiteFileType(), "switchd site file", "")
	case "policy":
		return schema.Generate(policies.PolicyFileType(), "switchd policy file", "")
	}
	return nil, usageError{fmt.Errorf("unknown file kind %q (want site or policy)", kind)}
}

func cmdSchema(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schema", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: switchd schema site|policy

Print the JSON Schema (draft 2020-12) of a site or a policy file, made from
the types the loader decodes into: unknown keys and wrong types are errors,
as in the loader; ranges and references are left to switchd validate.

For completion and checking in editors with the YAML language server, save
it and name it on the file's first line:

  switchd schema site > site.schema.json
  # yaml-language-server: $schema=site.schema.json
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("want one file kind: site or policy")}
	}
	s, err := fileSchema(fs.Arg(0))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
