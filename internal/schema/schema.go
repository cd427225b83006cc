// Package schema generates a JSON Schema (draft 2020-12) for a YAML file
// from the Go struct that the strict loader (internal/strictyaml) decodes
// it into, by reflection, so the schema cannot drift from the loader: the
// yaml tags give the keys, inline structs are merged, every mapping is
// closed (additionalProperties: false, as the loader rejects unknown keys),
// and the loader's own types map to what it accepts (durations as Go
// duration strings, ordered maps as objects, name lists as a name or a
// list).
//
// The schema may accept more than the loader, never less: it checks shape
// and types for editors and CI, while ranges, references and cross-field
// rules stay with Validate. In particular every value may be null (the
// loader treats an empty value as absent), and string fields take any
// scalar (the loader reads 8080 or true as text there).
//
// It imports only the standard library, yaml.v3 and internal/strictyaml.
package schema

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/switchd/switchd/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// Draft is the JSON Schema dialect of the schemas made here.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Describer is implemented by a schema type that decodes itself (a
// strictyaml.NodeDecoder) to describe what it accepts; a NodeDecoder this
// package does not know and that is not a Describer is an error.
type Describer interface {
	JSONSchema() map[string]any
}

// DurationPattern matches what time.ParseDuration accepts.
const DurationPattern = `^[-+]?((([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+|0)$`

var (
	durationType    = reflect.TypeFor[strictyaml.Duration]()
	timeDuration    = reflect.TypeFor[time.Duration]()
	nameListType    = reflect.TypeFor[strictyaml.NameList]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	nodeDecoderType = reflect.TypeFor[strictyaml.NodeDecoder]()
	describerType   = reflect.TypeFor[Describer]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
	strictyamlPkg   = durationType.PkgPath()
)

// Generate returns the schema of a file decoded into t (a struct type),
// titled title, with id as its $id when not empty.
func Generate(t reflect.Type, title, id string) (map[string]any, error) {
	g := generator{seen: map[reflect.Type]bool{}}
	s, err := g.schema(t, "")
	if err != nil {
		return nil, err
	}
	s["$schema"] = Draft
	if id != "" {
		s["$id"] = id
	}
	if title != "" {
		s["title"] = title
	}
	return s, nil
}

type generator struct {
	seen map[reflect.Type]bool // struct types on the current path, against recursion
}

// Schemas for the loader's scalars. Each takes null too.
func scalarString() map[string]any {
	// Any scalar: the loader reads a number or a boolean as its text.
	return map[string]any{"type": []any{"string", "number", "boolean", "null"}}
}

func durationSchema() map[string]any {
	return map[string]any{
		"description": "a Go duration such as 90s, 30m or 1h30m (or 0)",
		"anyOf": []any{
			map[string]any{"type": "string", "pattern": DurationPattern},
			map[string]any{"const": 0},
			map[string]any{"type": "null"},
		},
	}
}

func nameListSchema() map[string]any {
	name := map[string]any{"type": []any{"string", "number", "boolean"}}
	return map[string]any{
		"description": "a name or a list of names",
		"anyOf": []any{
			name,
			map[string]any{"type": "array", "items": name},
			map[string]any{"type": "null"},
		},
	}
}

// schema describes t at key path (for error messages).
func (g *generator) schema(t reflect.Type, path string) (map[string]any, error) {
	if t.Kind() == reflect.Pointer {
		// The loader decodes a pointer's element; null leaves it nil.
		return g.schema(t.Elem(), path)
	}
	pt := reflect.PointerTo(t)
	switch {
	case t == durationType || t == timeDuration:
		return durationSchema(), nil
	case t == nameListType:
		return nameListSchema(), nil
	case t == nodeType:
		// Free-form (a driver's settings): checked by the driver's own
		// strict decoder.
		return map[string]any{}, nil
	case pt.Implements(describerType):
		return reflect.New(t).Interface().(Describer).JSONSchema(), nil
	case t.PkgPath() == strictyamlPkg && strings.HasPrefix(t.Name(), "OrderedMap["):
		// []Entry[T]: a mapping with free-form keys and values of type T.
		vf, ok := t.Elem().FieldByName("Value")
		if !ok {
			return nil, fmt.Errorf("%s: %s has no Value field", pathOr(path), t)
		}
		vs, err := g.schema(vf.Type, path+".*")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": vs}, nil
	case pt.Implements(nodeDecoderType):
		return nil, fmt.Errorf("%s: %s decodes itself and does not describe itself (implement schema.Describer)", pathOr(path), t)
	case pt.Implements(textType) && t.Kind() != reflect.Struct:
		return scalarString(), nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return g.object(t, path)
	case reflect.Slice:
		items, err := g.schema(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": []any{"array", "null"}, "items": items}, nil
	case reflect.String:
		return scalarString(), nil
	case reflect.Float64:
		return map[string]any{"type": []any{"number", "null"}}, nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": []any{"integer", "null"}}, nil
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		return map[string]any{"type": []any{"integer", "null"}, "minimum": 0}, nil
	case reflect.Bool:
		return map[string]any{"type": []any{"boolean", "null"}}, nil
	}
	return nil, fmt.Errorf("%s: no schema for %s", pathOr(path), t)
}

// object describes a struct as the loader decodes it: its yaml keys, inline
// structs merged, no other key.
func (g *generator) object(t reflect.Type, path string) (map[string]any, error) {
	if g.seen[t] {
		return nil, fmt.Errorf("%s: %s contains itself", pathOr(path), t)
	}
	g.seen[t] = true
	defer delete(g.seen, t)
	props := map[string]any{}
	if err := g.fields(t, path, props); err != nil {
		return nil, err
	}
	return map[string]any{"type": []any{"object", "null"}, "properties": props, "additionalProperties": false}, nil
}

// fields adds t's keys to props, as strictyaml's structFields finds them.
func (g *generator) fields(t reflect.Type, path string, props map[string]any) error {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			if err := g.fields(f.Type, path, props); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := strictyaml.JoinPath(path, name)
		s, err := g.schema(f.Type, p)
		if err != nil {
			return err
		}
		props[name] = s
	}
	return nil
}

func pathOr(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}
