package cli

import (
	"net/http"

	"github.com/spf13/cobra"
)

func newMetricsCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "metrics",
		Short: "Print the server's Prometheus metrics (GET /metrics, signed with SigV4)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := opts.laminaRequest(cmd.Context(), http.MethodGet, "/metrics", nil)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}
