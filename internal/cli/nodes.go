package cli

import (
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/spf13/cobra"
)

// nodesOutput is what GET /_lamina/nodes answers.
type nodesOutput struct {
	Self     string
	Replicas int
	Nodes    []cluster.Node
}

func newNodesCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the live nodes of the cluster, as the server asked sees them (* marks that server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out nodesOutput
			if err := opts.laminaCall(cmd.Context(), http.MethodGet, "/_lamina/nodes", nil, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				return writeJSON(w, out)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tAPI\tURLS\tMEMORY MB\tENVIRONMENTS\tHEARTBEAT\tUP")
			for _, n := range out.Nodes {
				name := n.ID
				if n.ID == out.Self {
					name += " *"
				}
				beat := "-"
				if !n.Heartbeat.IsZero() {
					beat = time.Since(n.Heartbeat).Round(100*time.Millisecond).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\n", name, n.APIEndpoint, n.URLEndpoint,
					n.MemoryInUseMB, n.MemoryBudgetMB, n.Environments, beat, time.Since(n.Started).Round(time.Second))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n%d node(s); the store keeps %d replica(s) of everything.\n", len(out.Nodes), out.Replicas)
			return nil
		},
	}
}
