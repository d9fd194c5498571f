package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

// addClientCommands adds the commands that talk to a server.
func addClientCommands(root *cobra.Command) {
	opts := &clientOptions{}
	client := &cobra.Group{ID: "client", Title: "Function commands (talk to a server):"}
	root.AddGroup(client)
	for _, cmd := range []*cobra.Command{
		newCreateCommand(opts), newUpdateCodeCommand(opts), newListCommand(opts),
		newGetCommand(opts), newDeleteCommand(opts), newInvokeCommand(opts), newLogsCommand(opts), newAsyncCommand(opts), newAPICommand(opts), newScheduleCommand(opts),
		newRuntimesCommand(opts), newMetricsCommand(opts), newNodesCommand(opts), newDeployCommand(opts), newDestroyCommand(opts),
	} {
		cmd.GroupID = client.ID
		opts.register(cmd)
		root.AddCommand(cmd)
	}
}

// configFlags are the configuration flags of `lamina create`.
type configFlags struct {
	runtime     string
	handler     string
	role        string
	description string
	memory      int32
	timeout     int32
	env         []string
}

func newCreateCommand(opts *clientOptions) *cobra.Command {
	var cfg configFlags
	var codePath string
	cmd := &cobra.Command{
		Use:   "create NAME --runtime RUNTIME --handler HANDLER --code DIR|ZIP",
		Short: "Create a function from a directory (zipped on the fly) or a .zip file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, zipData, err := opts.clientAndCode(codePath)
			if err != nil {
				return err
			}
			env, err := parseEnv(cfg.env)
			if err != nil {
				return err
			}
			in := &lambda.CreateFunctionInput{
				FunctionName: aws.String(args[0]),
				Runtime:      types.Runtime(cfg.runtime),
				Handler:      aws.String(cfg.handler),
				Role:         aws.String(cfg.role),
				Code:         &types.FunctionCode{ZipFile: zipData},
			}
			if cfg.role == "" {
				in.Role = aws.String("arn:aws:iam::000000000000:role/lamina")
			}
			if cfg.description != "" {
				in.Description = aws.String(cfg.description)
			}
			if cfg.memory != 0 {
				in.MemorySize = aws.Int32(cfg.memory)
			}
			if cfg.timeout != 0 {
				in.Timeout = aws.Int32(cfg.timeout)
			}
			if env != nil {
				in.Environment = &types.Environment{Variables: env}
			}
			out, err := client.CreateFunction(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printConfiguration(cmd.OutOrStdout(), opts.output, configurationOf(out))
		},
	}
	f := cmd.Flags()
	f.StringVar(&codePath, "code", ".", "directory or .zip file with the function's code")
	f.StringVar(&cfg.runtime, "runtime", "", "runtime, e.g. python3.12, nodejs20.x, provided.al2023")
	f.StringVar(&cfg.handler, "handler", "", "handler, e.g. app.handler (default: bootstrap for provided runtimes)")
	f.StringVar(&cfg.role, "role", "", "execution role ARN (stored; default arn:aws:iam::000000000000:role/lamina)")
	f.StringVar(&cfg.description, "description", "", "description")
	f.Int32Var(&cfg.memory, "memory", 0, "memory in MB, 128–10240 (default 128)")
	f.Int32Var(&cfg.timeout, "timeout", 0, "timeout in seconds, 1–900 (default 3)")
	f.StringArrayVar(&cfg.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	_ = cmd.MarkFlagRequired("runtime")
	cmd.PreRun = func(*cobra.Command, []string) {
		if cfg.handler == "" && strings.HasPrefix(cfg.runtime, "provided") {
			cfg.handler = "bootstrap"
		}
	}
	return cmd
}

func newUpdateCodeCommand(opts *clientOptions) *cobra.Command {
	var codePath string
	cmd := &cobra.Command{
		Use:   "update-code NAME --code DIR|ZIP",
		Short: "Replace a function's code",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, zipData, err := opts.clientAndCode(codePath)
			if err != nil {
				return err
			}
			out, err := client.UpdateFunctionCode(cmd.Context(), &lambda.UpdateFunctionCodeInput{
				FunctionName: aws.String(args[0]),
				ZipFile:      zipData,
			})
			if err != nil {
				return err
			}
			return printConfiguration(cmd.OutOrStdout(), opts.output, configurationOf(out))
		},
	}
	cmd.Flags().StringVar(&codePath, "code", ".", "directory or .zip file with the function's code")
	return cmd
}

func newListCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List functions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := opts.lambdaClient()
			if err != nil {
				return err
			}
			var all []types.FunctionConfiguration
			pages := lambda.NewListFunctionsPaginator(client, &lambda.ListFunctionsInput{})
			for pages.HasMorePages() {
				page, err := pages.NextPage(cmd.Context())
				if err != nil {
					return err
				}
				all = append(all, page.Functions...)
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				return writeJSON(w, all)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tCODE SIZE\tLAST MODIFIED")
			for _, c := range all {
				fmt.Fprintf(tw, "%s\t%s\t%d MB\t%d s\t%d\t%s\n", aws.ToString(c.FunctionName), c.Runtime,
					aws.ToInt32(c.MemorySize), aws.ToInt32(c.Timeout), c.CodeSize, aws.ToString(c.LastModified))
			}
			return tw.Flush()
		},
	}
}

func newGetCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a function's configuration and where its code downloads from",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.lambdaClient()
			if err != nil {
				return err
			}
			out, err := client.GetFunction(cmd.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(args[0])})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				return writeJSON(w, struct {
					Configuration *types.FunctionConfiguration
					Code          *types.FunctionCodeLocation
					Tags          map[string]string
				}{out.Configuration, out.Code, out.Tags})
			}
			if err := printConfiguration(w, opts.output, out.Configuration); err != nil {
				return err
			}
			if out.Code != nil {
				fmt.Fprintf(w, "%-14s %s\n", "Code URL:", aws.ToString(out.Code.Location))
			}
			return nil
		},
	}
}

func newDeleteCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a function",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.lambdaClient()
			if err != nil {
				return err
			}
			if _, err := client.DeleteFunction(cmd.Context(), &lambda.DeleteFunctionInput{FunctionName: aws.String(args[0])}); err != nil {
				return err
			}
			if opts.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"Deleted": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s\n", args[0])
			return nil
		},
	}
}

// clientAndCode returns a Lambda client and the deployment package at
// codePath, for the commands that upload code.
func (o *clientOptions) clientAndCode(codePath string) (*lambda.Client, []byte, error) {
	client, err := o.lambdaClient()
	if err != nil {
		return nil, nil, err
	}
	zipData, err := packageCode(codePath)
	return client, zipData, err
}

// configurationOf converts the output of CreateFunction or
// UpdateFunctionCode (which are a FunctionConfiguration with other names) for
// printing.
func configurationOf(v any) *types.FunctionConfiguration {
	data, _ := json.Marshal(v)
	var c types.FunctionConfiguration
	_ = json.Unmarshal(data, &c)
	return &c
}

// printConfiguration prints a configuration as "Key: value" lines, or as
// JSON.
func printConfiguration(w io.Writer, output string, c *types.FunctionConfiguration) error {
	if output == "json" {
		return writeJSON(w, c)
	}
	row := func(k, v string) { fmt.Fprintf(w, "%-14s %s\n", k+":", v) }
	row("Name", aws.ToString(c.FunctionName))
	row("ARN", aws.ToString(c.FunctionArn))
	row("Runtime", string(c.Runtime))
	row("Handler", aws.ToString(c.Handler))
	row("Memory", fmt.Sprintf("%d MB", aws.ToInt32(c.MemorySize)))
	row("Timeout", fmt.Sprintf("%d s", aws.ToInt32(c.Timeout)))
	row("Code size", fmt.Sprintf("%d bytes", c.CodeSize))
	row("Code SHA-256", aws.ToString(c.CodeSha256))
	row("State", string(c.State))
	row("Last modified", aws.ToString(c.LastModified))
	row("Revision", aws.ToString(c.RevisionId))
	if c.Environment != nil && len(c.Environment.Variables) > 0 {
		var kv []string
		for k, v := range c.Environment.Variables {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		row("Environment", strings.Join(kv, " "))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseEnv turns KEY=VALUE flags into a map.
func parseEnv(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", p)
		}
		env[k] = v
	}
	return env, nil
}
