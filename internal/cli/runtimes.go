package cli

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/spf13/cobra"
)

func newRuntimesCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "runtimes",
		Short: "Show the runtimes and architectures the server runs, and on which interpreters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d runtimes.Description
			if err := opts.laminaCall(cmd.Context(), http.MethodGet, "/_lamina/runtimes", nil, &d); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				return writeJSON(w, d)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUNTIME\tARCH\tRUNS ON\tVERSION\tINTERPRETER")
			for _, r := range d.Runtimes {
				switch {
				case r.Unavailable != "":
					fmt.Fprintf(tw, "%s\t-\tunavailable\t\t%s\n", r.Runtime, r.Unavailable)
				case r.Interpreter == "":
					fmt.Fprintf(tw, "%s\t%s\tthe function's bootstrap\t\t\n", r.Runtime, r.Architecture)
				default:
					runsOn := r.Runtime
					if r.MappedTo != "" {
						runsOn = r.MappedTo + " (--runtime-map)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\n", r.Runtime, r.Architecture, runsOn, r.Version, r.Interpreter, r.Source)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "\nArchitectures: %s\n", strings.Join(d.Architectures, ", "))
			archs := make([]string, 0, len(d.UnavailableArchitectures))
			for arch := range d.UnavailableArchitectures {
				archs = append(archs, arch)
			}
			slices.Sort(archs)
			for _, arch := range archs {
				fmt.Fprintf(w, "Not %s: %s\n", arch, d.UnavailableArchitectures[arch])
			}
			return nil
		},
	}
}
