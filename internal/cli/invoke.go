package cli

import (
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func newInvokeCommand(opts *clientOptions) *cobra.Command {
	var showLogs bool
	var qualifier string
	cmd := &cobra.Command{
		Use:   "invoke NAME [PAYLOAD|-]",
		Short: "Invoke a function and print its result (PAYLOAD is JSON; - reads it from stdin)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.lambdaClient()
			if err != nil {
				return err
			}
			in := &lambda.InvokeInput{FunctionName: aws.String(args[0])}
			if len(args) == 2 {
				payload := []byte(args[1])
				if args[1] == "-" {
					if payload, err = io.ReadAll(cmd.InOrStdin()); err != nil {
						return err
					}
				}
				in.Payload = payload
			}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			if showLogs {
				in.LogType = types.LogTypeTail
			}
			out, err := client.Invoke(cmd.Context(), in)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				result := map[string]any{
					"StatusCode":      out.StatusCode,
					"ExecutedVersion": aws.ToString(out.ExecutedVersion),
					"Payload":         string(out.Payload),
				}
				if out.FunctionError != nil {
					result["FunctionError"] = *out.FunctionError
				}
				if out.LogResult != nil {
					result["LogResult"] = decodeLog(*out.LogResult)
				}
				return writeJSON(w, result)
			}
			if out.LogResult != nil {
				fmt.Fprint(cmd.ErrOrStderr(), decodeLog(*out.LogResult))
			}
			fmt.Fprintln(w, string(out.Payload))
			if out.FunctionError != nil {
				return fmt.Errorf("the function failed (%s)", *out.FunctionError)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&showLogs, "logs", false, "also print the invocation's log (the last 4 KB) to stderr")
	cmd.Flags().StringVar(&qualifier, "qualifier", "", "version or alias to invoke")
	return cmd
}

func decodeLog(b64 string) string {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return b64
	}
	return string(data)
}
