package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/controller/journal"
	"go.uber.org/zap/zaptest"
)

// helpCommands is every command line that takes -h: each command, and the
// journal's subcommands.
func helpCommands() [][]string {
	var out [][]string
	for _, c := range commands() {
		out = append(out, []string{c.name})
	}
	for _, j := range journalCommands {
		out = append(out, []string{"journal", j.name})
	}
	return out
}

func TestHelpEverySubcommand(t *testing.T) {
	names := map[string]bool{}
	for _, cmd := range helpCommands() {
		names[cmd[0]] = true
		for _, h := range []string{"-h", "--help", "-help"} {
			t.Run(strings.Join(cmd, " ")+" "+h, func(t *testing.T) {
				code, out, errOut := runCmd(append(append([]string(nil), cmd...), h)...)
				require.Equal(t, 0, code, errOut)
				require.Empty(t, errOut, "asked for, help goes to stdout")
				if len(cmd) == 1 && cmd[0] == "journal" {
					require.Contains(t, out, "switchd journal verify FILE")
					require.Contains(t, out, "switchd journal export FILE")
					return
				}
				require.True(t, strings.HasPrefix(out, "usage:"), out)
				require.Contains(t, out, "switchd "+strings.Join(cmd, " "))
			})
		}
	}
	for _, want := range []string{"run", "sim", "replay", "journal", "validate", "probe", "fakes", "gen-trace", "version", "completion", "schema"} {
		require.True(t, names[want], want)
	}
	t.Run("flags are listed", func(t *testing.T) {
		code, out, _ := runCmd("sim", "-h")
		require.Equal(t, 0, code)
		require.Contains(t, out, "-policy FILE")
		require.Contains(t, out, "Replay grid traces")
	})
	t.Run("help CMD", func(t *testing.T) {
		code, out, errOut := runCmd("help", "validate")
		require.Equal(t, 0, code, errOut)
		require.True(t, strings.HasPrefix(out, "usage: switchd validate --config FILE"), out)
	})
	t.Run("help after other flags", func(t *testing.T) {
		code, out, errOut := runCmd("validate", "--config", "x.yaml", "-h")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "usage: switchd validate")
	})
	t.Run("top level", func(t *testing.T) {
		for _, arg := range []string{"-h", "--help", "help"} {
			code, out, _ := runCmd(arg)
			require.Equal(t, 0, code)
			for _, c := range commands() {
				require.Contains(t, out, "\n  "+c.name+" ")
			}
		}
	})
	t.Run("a bad flag is still an error", func(t *testing.T) {
		code, out, errOut := runCmd("validate", "--bogus")
		require.NotZero(t, code)
		require.Empty(t, out)
		require.Contains(t, errOut, "flag provided but not defined: -bogus")
	})
}

func TestParseTime(t *testing.T) {
	cdt := time.FixedZone("", -5*3600)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2024-08-01", time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-08-01T15:04", time.Date(2024, 8, 1, 15, 4, 0, 0, time.UTC)},
		{"2024-08-01 15:04", time.Date(2024, 8, 1, 15, 4, 0, 0, time.UTC)},
		{"2024-08-01T15:04:05", time.Date(2024, 8, 1, 15, 4, 5, 0, time.UTC)},
		{"2024-08-01 15:04:05", time.Date(2024, 8, 1, 15, 4, 5, 0, time.UTC)},
		{"2024-08-01T15:04:05-05:00", time.Date(2024, 8, 1, 15, 4, 5, 0, cdt)},
		{"2024-08-01T15:04:05.5Z", time.Date(2024, 8, 1, 15, 4, 5, 5e8, time.UTC)},
		{"2024-08-01 15:04:05-05:00", time.Date(2024, 8, 1, 15, 4, 5, 0, cdt)},
		{"2024-08-01T15:04-05:00", time.Date(2024, 8, 1, 15, 4, 0, 0, cdt)},
		{" 2024-08-01 ", time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTime(tc.in)
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got), "got %s, want %s", got, tc.want)
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"2024-13-01", `"2024-13-01": month out of range; want 2024-08-01, 2024-08-01T15:04, 2024-08-01 15:04 or RFC 3339`},
		{"2024-02-30T10:00", `"2024-02-30T10:00": day out of range; want`},
		{"yesterday", `"yesterday": want 2024-08-01`},
		{"2024-08-01T25:00", `"2024-08-01T25:00": want 2024-08-01`},
		{"08/01/2024", `"08/01/2024": want 2024-08-01`},
		{"", `"": want 2024-08-01`},
	} {
		t.Run("bad "+tc.in, func(t *testing.T) {
			_, err := parseTime(tc.in)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// journal export takes a bare date (and the other forms), as a settlement
// period is usually given.
func TestJournalExportDates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j, _, err := journal.Open(path, zaptest.NewLogger(t))
	require.NoError(t, err)
	for _, at := range []time.Time{
		time.Date(2024, 7, 31, 23, 45, 0, 0, time.UTC),
		time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 8, 31, 23, 45, 0, 0, time.UTC),
		time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC),
	} {
		require.NoError(t, j.Append(journal.Entry{Time: at, Kind: journal.KindState, Fleet: "asics",
			Counts: map[string]int{"mining": 3}, KW: map[string]float64{"mining": 3 * 0.1}}))
	}
	require.NoError(t, j.Close())
	for _, tc := range []struct {
		name     string
		from, to string
		want     string
	}{
		{"dates", "2024-08-01", "2024-09-01", "time,fleet,mode,kw\n2024-08-01T00:00:00Z,asics,mining,0.3\n2024-08-31T23:45:00Z,asics,mining,0.3\n"},
		{"minutes with a space", "2024-08-01 00:00", "2024-08-31 23:45", "time,fleet,mode,kw\n2024-08-01T00:00:00Z,asics,mining,0.3\n"},
		{"zone given", "2024-07-31T19:00:00-05:00", "2024-07-31T19:00:01-05:00", "time,fleet,mode,kw\n2024-08-01T00:00:00Z,asics,mining,0.3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd("journal", "export", path, "--from", tc.from, "--to", tc.to)
			require.Equal(t, 0, code, errOut)
			require.Equal(t, tc.want, out)
		})
	}
	t.Run("bad date", func(t *testing.T) {
		code, _, errOut := runCmd("journal", "export", path, "--from", "2024-08-32")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, `switchd journal: --from: "2024-08-32": day out of range`)
	})
	t.Run("empty range", func(t *testing.T) {
		code, _, errOut := runCmd("journal", "export", path, "--from", "2024-09-01", "--to", "2024-08-01")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, "is not before --to")
	})
	t.Run("verify takes no dates", func(t *testing.T) {
		code, _, errOut := runCmd("journal", "verify", path, "--from", "2024-08-01")
		require.NotZero(t, code)
		require.Contains(t, errOut, "flag provided but not defined: -from")
		code, out, errOut := runCmd("journal", "verify", path)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "4 entries, chain intact")
	})
}

func TestGenTraceStartDate(t *testing.T) {
	code, out, errOut := runCmd("gen-trace", "--start", "2024-03-01", "--n", "2")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "\n2024-03-01T00:00:00Z,")
	code, _, errOut = runCmd("gen-trace", "--start", "March 1st")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--start: "March 1st": want 2024-08-01`)
}

// completionScript writes `switchd completion shell` to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runCmd("completion", shell)
	require.Equal(t, 0, code, errOut)
	p := filepath.Join(t.TempDir(), "switchd."+shell)
	require.NoError(t, os.WriteFile(p, []byte(out), 0o600))
	return p
}

// shell returns the path of a shell, or skips the test without it (fails
// under SWITCHD_REQUIRE_SHELLS, which CI sets).
func shell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SWITCHD_REQUIRE_SHELLS") != "" {
			t.Fatalf("%s is not installed and SWITCHD_REQUIRE_SHELLS is set", name)
		}
		t.Skipf("%s is not installed: its completion script's syntax is not checked", name)
	}
	return p
}

func TestCompletionSyntax(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		t.Run(sh, func(t *testing.T) {
			script := completionScript(t, sh)
			bin := shell(t, sh)
			out, err := exec.Command(bin, "-n", script).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Empty(t, string(out))
		})
	}
	t.Run("unknown shell", func(t *testing.T) {
		code, _, errOut := runCmd("completion", "tcsh")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, `unknown shell "tcsh" (want bash, zsh or fish)`)
	})
}

// bashComplete sources the bash script, completes words (the last one
// being completed) and returns COMPREPLY.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, shQuote(w))
	}
	prog := "source " + shQuote(script) + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "\n_switchd\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command(shell(t, "bash"), "--norc", "--noprofile", "-c", prog)
	cmd.Dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cmd.Dir, "site.yaml"), nil, 0o600))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.Fields(string(out))
}

func TestBashCompletionCompletes(t *testing.T) {
	script := completionScript(t, "bash")
	for _, tc := range []struct {
		name  string
		words []string
		want  []string
	}{
		{"a command", []string{"switchd", "va"}, []string{"validate"}},
		{"every command", []string{"switchd", ""}, []string{"run", "sim", "replay", "journal", "validate", "probe", "fakes", "gen-trace", "schema", "completion", "version"}},
		{"a flag of sim", []string{"switchd", "sim", "--po"}, []string{"--policy"}},
		{"a file for --config", []string{"switchd", "sim", "--config", "si"}, []string{"site.yaml"}},
		{"values of --format", []string{"switchd", "sim", "--format", ""}, []string{"text", "json"}},
		{"journal subcommands", []string{"switchd", "journal", "ex"}, []string{"export"}},
		{"journal export flags", []string{"switchd", "journal", "export", "--"}, []string{"--from", "--to"}},
		{"journal file", []string{"switchd", "journal", "verify", "s"}, []string{"site.yaml"}},
		{"shells", []string{"switchd", "completion", ""}, []string{"bash", "zsh", "fish"}},
		{"schema kinds", []string{"switchd", "schema", "p"}, []string{"policy"}},
		{"nothing after a value flag", []string{"switchd", "replay", "--broker", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bashComplete(t, script, tc.words...)
			require.ElementsMatch(t, tc.want, got)
		})
	}
	// Every flag of every command's FlagSet is offered.
	model, err := completionModel()
	require.NoError(t, err)
	for _, c := range model {
		if len(c.flags) == 0 {
			continue
		}
		words := append([]string{"switchd"}, strings.Fields(c.name)...)
		got := bashComplete(t, script, append(words, "--")...)
		for _, f := range c.flags {
			require.Contains(t, got, "--"+f.name, c.name)
		}
	}
}

// The values completion offers for a flag are named in that flag's help.
func TestCompletionFlagValues(t *testing.T) {
	model, err := completionModel()
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, c := range model {
		for _, f := range c.flags {
			if len(f.values) > 0 {
				seen[f.name] = true
				require.Equal(t, flagValues[f.name], f.values, "%s --%s", c.name, f.name)
			}
		}
	}
	for name := range flagValues {
		require.True(t, seen[name], "flagValues names --%s, which no command has (or whose help names none of its values)", name)
	}
}

func TestFishCompletionCompletes(t *testing.T) {
	script := completionScript(t, "fish")
	bin := shell(t, "fish")
	for _, tc := range []struct{ line, want string }{
		{"switchd va", "validate\t"},
		{"switchd sim --po", "--policy\t"},
		{"switchd sim --format ", "json\t"},
		{"switchd journal ex", "export"},
		{"switchd journal export --", "--from\t"},
		{"switchd schema ", "policy"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			out, err := exec.Command(bin, "--no-config", "-c", "source "+shQuote(script)+"; complete -C "+shQuote(tc.line)).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Contains(t, string(out), tc.want)
		})
	}
}

// TestCompletionDescriptions: a flag's description in the scripts is its
// first sentence, not cut at an abbreviation ("broker URL, e.g" was all
// zsh and fish showed for replay --broker).
func TestCompletionDescriptions(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"broker URL, e.g. tcp://127.0.0.1:1883. More", "broker URL, e.g. tcp://127.0.0.1:1883"},
		{"trace time per wall time, e.g. 3600x; 0 = as fast as possible", "trace time per wall time, e.g. 3600x; 0 = as fast as possible"},
		{"that is, i.e. this. Then", "that is, i.e. this"},
		{"no stop at all", "no stop at all"},
	} {
		require.Equal(t, tc.want, firstSentence(tc.in), tc.in)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCmd("completion", sh)
		require.Equal(t, 0, code, errOut)
		require.NotRegexp(t, `e\.g['\]]`, out, "%s: a description cut at e.g.", sh)
	}
}
