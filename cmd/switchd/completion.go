package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// flagSink is the stderr of a command run with -h only to learn its flags:
// newFlags hands it every FlagSet it makes. Every command builds its
// FlagSet and parses before it does anything else, so a -h run has no
// effect; the completion scripts are thus made from the very FlagSets the
// commands parse and cannot drift from them.
type flagSink struct {
	io.Writer
	sets []*flag.FlagSet
}

// complFlag is one flag as a completion script offers it.
type complFlag struct {
	name   string
	usage  string // the first sentence of its help
	value  bool   // takes a value (not a bool flag)
	file   bool   // the value is a file
	values []string
}

// complCmd is a command or journal subcommand with its flags.
type complCmd struct {
	name  string // "sim", "journal export"
	help  string
	args  []string // words it takes first (journal: verify export)
	files bool     // its operands are files (journal verify FILE)
	flags []complFlag
}

// completionModel is every command with its flags, read from the FlagSets.
func completionModel() ([]complCmd, error) {
	var out []complCmd
	for _, c := range commands() {
		runs := [][]string{{"-h"}}
		if c.name == "journal" {
			runs = nil
			for _, j := range journalCommands {
				runs = append(runs, []string{j.name, "-h"})
			}
			out = append(out, complCmd{name: c.name, help: c.summary, args: c.args})
		}
		for _, args := range runs {
			sink := &flagSink{Writer: io.Discard}
			if err := c.run(context.Background(), args, io.Discard, sink); !errors.Is(err, flag.ErrHelp) {
				return nil, fmt.Errorf("%s %s: want flag.ErrHelp, got %v", c.name, strings.Join(args, " "), err)
			}
			if len(sink.sets) != 1 {
				return nil, fmt.Errorf("%s: %d FlagSets made with -h, want 1", c.name, len(sink.sets))
			}
			cc := complCmd{name: c.name, help: c.summary, args: c.args}
			if c.name == "journal" {
				cc.name, cc.args, cc.files = "journal "+args[0], nil, true
				for _, j := range journalCommands {
					if j.name == args[0] {
						cc.help = j.summary
					}
				}
			}
			sink.sets[0].VisitAll(func(f *flag.Flag) { cc.flags = append(cc.flags, newComplFlag(f)) })
			out = append(out, cc)
		}
	}
	return out, nil
}

// flagValues are the values of flags whose help cannot list them in a form
// worth parsing; a test checks each against the flag's help text.
var flagValues = map[string][]string{
	"format":     {"text", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
	"log-format": {"console", "json"},
}

// firstSentence cuts s at its first full stop, not at an abbreviation's
// ("broker URL, e.g. tcp://..." stays whole).
func firstSentence(s string) string {
	from := 0
	for {
		i := strings.Index(s[from:], ". ")
		if i < 0 {
			return s
		}
		i += from
		if before := s[:i]; !strings.HasSuffix(before, "e.g") && !strings.HasSuffix(before, "i.e") {
			return before
		}
		from = i + 2
	}
}

func newComplFlag(f *flag.Flag) complFlag {
	placeholder, usage := flag.UnquoteUsage(f)
	usage = firstSentence(usage)
	if i := strings.IndexAny(usage, ";("); i > 20 {
		usage = usage[:i]
	}
	usage = strings.TrimSpace(usage)
	bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
	cf := complFlag{name: f.Name, usage: usage, value: !(isBool && bf.IsBoolFlag())}
	cf.file = cf.value && strings.Contains(placeholder, "FILE")
	if cf.value {
		for _, v := range flagValues[f.Name] {
			// Only where the help names the value: a flag of the same name
			// with other values gets none.
			if strings.Contains(f.Usage, v) {
				cf.values = append(cf.values, v)
			}
		}
	}
	return cf
}

func cmdCompletion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("completion", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: switchd completion bash|zsh|fish

Print a shell completion script for switchd's commands and flags.

  bash: source <(switchd completion bash)       (or save it in /etc/bash_completion.d/switchd)
  zsh:  source <(switchd completion zsh)        (or save it as _switchd in a $fpath directory)
  fish: switchd completion fish | source        (or save it in ~/.config/fish/completions/switchd.fish)
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("want one shell: bash, zsh or fish")}
	}
	model, err := completionModel()
	if err != nil {
		return err
	}
	var script string
	switch fs.Arg(0) {
	case "bash":
		script = bashCompletion(model)
	case "zsh":
		script = zshCompletion(model)
	case "fish":
		script = fishCompletion(model)
	default:
		return usageError{fmt.Errorf("unknown shell %q (want bash, zsh or fish)", fs.Arg(0))}
	}
	_, err = io.WriteString(stdout, script)
	return err
}

// topLevel is the names of the commands (journal once).
func topLevel(model []complCmd) []string {
	var names []string
	for _, c := range model {
		if n, _, _ := strings.Cut(c.name, " "); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// shQuote quotes s for bash, zsh and fish alike (single quotes; fish
// reads '\” as well).
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func bashCompletion(model []complCmd) string {
	var b strings.Builder
	b.WriteString(`# bash completion for switchd (switchd completion bash).
# Use: source <(switchd completion bash), or save it as /etc/bash_completion.d/switchd.
_switchd() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    if (( COMP_CWORD <= 1 )); then
`)
	fmt.Fprintf(&b, "        COMPREPLY=($(compgen -W %s -- \"$cur\"))\n", shQuote(strings.Join(topLevel(model), " ")))
	b.WriteString(`        return 0
    fi
    local key=${COMP_WORDS[1]}
    if [[ $key == journal ]] && (( COMP_CWORD > 2 )); then
        key="journal ${COMP_WORDS[2]}"
    fi
    # flags: offered; valued: flags taking a value; files: flags taking a file;
    # args: words taken first; operands: files after them.
    local flags= valued= files= args= operands= enum=
    local p=${prev#-}
    p=${p#-}
    case $key in
`)
	for _, c := range model {
		var flags, valued, files []string
		var enums []string
		for _, f := range c.flags {
			flags = append(flags, "--"+f.name)
			if f.value {
				valued = append(valued, f.name)
			}
			if f.file {
				files = append(files, f.name)
			}
			if len(f.values) > 0 {
				enums = append(enums, fmt.Sprintf("            [[ $p == %s ]] && enum=%s", f.name, shQuote(strings.Join(f.values, " "))))
			}
		}
		fmt.Fprintf(&b, "        %s)\n", shQuote(c.name))
		fmt.Fprintf(&b, "            flags=%s valued=%s files=%s args=%s operands=%v\n",
			shQuote(strings.Join(flags, " ")), shQuote(" "+strings.Join(valued, " ")+" "), shQuote(" "+strings.Join(files, " ")+" "),
			shQuote(strings.Join(c.args, " ")), map[bool]int{true: 1, false: 0}[c.files])
		for _, e := range enums {
			b.WriteString(e + "\n")
		}
		b.WriteString("            ;;\n")
	}
	b.WriteString(`    esac
    if [[ $prev == -* && $valued == *" $p "* ]]; then
        if [[ -n $enum ]]; then
            COMPREPLY=($(compgen -W "$enum" -- "$cur"))
        elif [[ $files == *" $p "* ]]; then
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $args ]] && (( COMP_CWORD == 2 )); then
        COMPREPLY=($(compgen -W "$args" -- "$cur"))
    elif (( operands )); then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}
complete -F _switchd switchd
`)
	return b.String()
}

// zshEscape escapes text for an _arguments or _describe spec inside single
// quotes.
func zshEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `:`, `\:`)
	return r.Replace(s)
}

func zshCompletion(model []complCmd) string {
	var b strings.Builder
	b.WriteString(`#compdef switchd
# zsh completion for switchd (switchd completion zsh).
# Use: source <(switchd completion zsh), or save it as _switchd in a directory on $fpath.
_switchd() {
    local -a cmds
    cmds=(
`)
	for _, c := range model {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(&b, "        %s\n", shQuote(zshEscape(c.name)+":"+zshEscape(c.help)))
		}
	}
	b.WriteString(`    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'switchd command' cmds
        return
    fi
    local key=${words[2]}
    words=(${words[2,-1]})
    (( CURRENT-- ))
    if [[ $key == journal ]]; then
        if (( CURRENT == 2 )); then
            _values 'journal command' verify export events
            return
        fi
        key="journal ${words[2]}"
        words=(${words[2,-1]})
        (( CURRENT-- ))
    fi
    case $key in
`)
	for _, c := range model {
		if len(c.flags) == 0 && len(c.args) == 0 && !c.files {
			fmt.Fprintf(&b, "        %s)\n            _message 'no arguments'\n            ;;\n", shQuote(c.name))
			continue
		}
		fmt.Fprintf(&b, "        %s)\n            _arguments", shQuote(c.name))
		for _, f := range c.flags {
			spec := "--" + f.name + "[" + zshEscape(f.usage) + "]"
			switch {
			case len(f.values) > 0:
				spec += ":" + f.name + ":(" + strings.Join(f.values, " ") + ")"
			case f.file:
				spec += ":file:_files"
			case f.value:
				spec += ":" + f.name + ": "
			}
			fmt.Fprintf(&b, " \\\n                %s", shQuote(spec))
		}
		switch {
		case len(c.args) > 0:
			fmt.Fprintf(&b, " \\\n                %s", shQuote("1:argument:("+strings.Join(c.args, " ")+")"))
		case c.files:
			fmt.Fprintf(&b, " \\\n                %s", shQuote("*:file:_files"))
		}
		b.WriteString("\n            ;;\n")
	}
	b.WriteString(`    esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _switchd "$@"
else
    compdef _switchd switchd
fi
`)
	return b.String()
}

// fishQuote quotes s for fish (single quotes: \ and ' escaped).
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishCompletion(model []complCmd) string {
	var b strings.Builder
	top := topLevel(model)
	b.WriteString("# fish completion for switchd (switchd completion fish).\n")
	b.WriteString("# Use: switchd completion fish | source, or save it as ~/.config/fish/completions/switchd.fish.\n")
	b.WriteString("complete -c switchd -f\n")
	for _, c := range model {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(&b, "complete -c switchd -n %s -a %s -d %s\n",
				fishQuote("not __fish_seen_subcommand_from "+strings.Join(top, " ")), fishQuote(c.name), fishQuote(c.help))
		}
	}
	for _, c := range model {
		cond := "__fish_seen_subcommand_from " + c.name
		if n, sub, ok := strings.Cut(c.name, " "); ok {
			cond = "__fish_seen_subcommand_from " + n + "; and __fish_seen_subcommand_from " + sub
		}
		if len(c.args) > 0 {
			fmt.Fprintf(&b, "complete -c switchd -n %s -a %s\n",
				fishQuote(cond+"; and not __fish_seen_subcommand_from "+strings.Join(c.args, " ")), fishQuote(strings.Join(c.args, " ")))
		}
		if c.files {
			fmt.Fprintf(&b, "complete -c switchd -n %s -F\n", fishQuote(cond))
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c switchd -n %s -l %s", fishQuote(cond), fishQuote(f.name))
			switch {
			case len(f.values) > 0:
				line += " -x -a " + fishQuote(strings.Join(f.values, " "))
			case f.file:
				line += " -r -F"
			case f.value:
				line += " -x"
			}
			b.WriteString(line + " -d " + fishQuote(f.usage) + "\n")
		}
	}
	return b.String()
}
