package cli

import (
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func newInvokeCommand(opts *clientOptions) *cobra.Command {
	var showLogs, async bool
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
			if async {
				in.InvocationType = types.InvocationTypeEvent
			}
			out, err := client.Invoke(cmd.Context(), in)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if async {
				id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
				if opts.output == "json" {
					return writeJSON(w, map[string]any{"StatusCode": out.StatusCode, "RequestId": id})
				}
				fmt.Fprintf(w, "Queued (request %s)\n", id)
				return nil
			}
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
	cmd.Flags().BoolVar(&async, "async", false, "invoke asynchronously (InvocationType Event): queue the event and return")
	return cmd
}

func decodeLog(b64 string) string {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return b64
	}
	return string(data)
}
