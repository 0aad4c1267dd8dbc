package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func (r *runner) topUsage(w io.Writer) {
	fmt.Fprint(w, `dualwrite keeps two applications' databases in sync both ways, in near real time.

Usage: dualwrite [--version] [--log-format text|json] [--log-level LEVEL] COMMAND [flags]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands() {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
		}
	}
	for _, g := range groups {
		fmt.Fprintf(tw, "  %s\t%s\n", g.name, g.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Examples:
  dualwrite validate dualwrite.yaml
  dualwrite serve --config dualwrite.yaml
  dualwrite maps list
  dualwrite bench postgres

Run 'dualwrite COMMAND --help' for a command's flags and examples.
`)
}

func (r *runner) groupUsage(w io.Writer, g group) {
	fmt.Fprintf(w, "Usage: dualwrite %s COMMAND [flags]\n\n%s\n\nCommands:\n", g.name, g.desc)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands() {
		if sub, ok := strings.CutPrefix(c.name, g.name+" "); ok {
			fmt.Fprintf(tw, "  %s\t%s\n", sub, c.summary)
		}
	}
	tw.Flush()
	writeExamples(w, g.examples)
	fmt.Fprintf(w, "\nRun 'dualwrite %s COMMAND --help' for a command's flags and examples.\n", g.name)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	synopsis := "dualwrite " + c.name
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n", synopsis, c.desc)
	fmt.Fprint(w, "\nFlags:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if typ != "" {
			name += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	fmt.Fprintf(tw, "  %s\t%s\n", "-h, --help", "show this help")
	tw.Flush()
	writeExamples(w, c.examples)
}

func writeExamples(w io.Writer, examples []string) {
	if len(examples) == 0 {
		return
	}
	fmt.Fprint(w, "\nExamples:\n")
	for _, e := range examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}
