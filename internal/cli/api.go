package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/lamina-project/lamina"
	"github.com/spf13/cobra"
)

// apiOutput is what Lamina's HTTP API operations answer.
type apiOutput struct {
	lamina.HTTPAPI
	APIEndpoint string
}

// newAPICommand groups the commands that manage HTTP APIs: route tables
// that map requests on the URL listener to functions.
func newAPICommand(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "api", Short: "Manage HTTP APIs: routes from HTTP requests to functions"}
	var stageVars []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an HTTP API",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := parseEnv(stageVars)
			if err != nil {
				return err
			}
			var out apiOutput
			if err := opts.laminaCall(cmd.Context(), http.MethodPost, "/_lamina/apis",
				map[string]any{"Name": args[0], "StageVariables": vars}, &out); err != nil {
				return err
			}
			return printAPI(cmd, opts, &out)
		},
	}
	create.Flags().StringArrayVar(&stageVars, "stage-var", nil, "stage variable KEY=VALUE (repeatable)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List HTTP APIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Items []apiOutput }
			if err := opts.laminaCall(cmd.Context(), http.MethodGet, "/_lamina/apis", nil, &out); err != nil {
				return err
			}
			if opts.output == "json" {
				return writeJSON(cmd.OutOrStdout(), out.Items)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROUTES\tENDPOINT")
			for _, a := range out.Items {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", a.APIID, a.Name, len(a.Routes), a.APIEndpoint)
			}
			return tw.Flush()
		},
	}
	get := &cobra.Command{
		Use:   "get API_ID",
		Short: "Show an HTTP API and its routes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out apiOutput
			if err := opts.laminaCall(cmd.Context(), http.MethodGet, "/_lamina/apis/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return printAPI(cmd, opts, &out)
		},
	}
	del := &cobra.Command{
		Use:   "delete API_ID",
		Short: "Delete an HTTP API",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.laminaCall(cmd.Context(), http.MethodDelete, "/_lamina/apis/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	route := &cobra.Command{
		Use:   "route API_ID ROUTE_KEY FUNCTION",
		Short: `Route requests to a function: ROUTE_KEY is "METHOD /path/{param}/{proxy+}" (ANY for every method) or $default`,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out apiOutput
			if err := opts.laminaCall(cmd.Context(), http.MethodPut, "/_lamina/apis/"+url.PathEscape(args[0])+"/routes",
				map[string]string{"RouteKey": args[1], "Function": args[2]}, &out); err != nil {
				return err
			}
			return printAPI(cmd, opts, &out)
		},
	}
	unroute := &cobra.Command{
		Use:   "unroute API_ID ROUTE_KEY",
		Short: "Remove a route",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.laminaCall(cmd.Context(), http.MethodDelete,
				"/_lamina/apis/"+url.PathEscape(args[0])+"/routes?RouteKey="+url.QueryEscape(args[1]), nil, nil)
		},
	}
	cmd.AddCommand(create, list, get, del, route, unroute)
	return cmd
}

func printAPI(cmd *cobra.Command, opts *clientOptions, a *apiOutput) error {
	w := cmd.OutOrStdout()
	if opts.output == "json" {
		return writeJSON(w, a)
	}
	fmt.Fprintf(w, "%-10s %s\n%-10s %s\n%-10s %s\n", "ID:", a.APIID, "Name:", a.Name, "Endpoint:", a.APIEndpoint)
	for k, v := range a.StageVariables {
		fmt.Fprintf(w, "%-10s %s=%s\n", "Stage var:", k, v)
	}
	for _, r := range a.Routes {
		target := r.Function
		if r.Qualifier != "" {
			target += ":" + r.Qualifier
		}
		fmt.Fprintf(w, "%-10s %s -> %s\n", "Route:", r.RouteKey, target)
	}
	return nil
}
