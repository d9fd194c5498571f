package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/lamina-project/lamina/internal/async"
	"github.com/spf13/cobra"
)

func newAsyncCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "async NAME",
		Short: "Show a function's asynchronous queue: depth, oldest event, retries, failures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st async.Status
			if err := opts.laminaCall(cmd.Context(), http.MethodGet, "/_lamina/async/"+url.PathEscape(args[0]), nil, &st); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == "json" {
				return writeJSON(w, st)
			}
			fmt.Fprintf(w, "%-16s %d\n", "Queued:", st.Depth)
			fmt.Fprintf(w, "%-16s %d\n", "In retry:", st.InRetry)
			fmt.Fprintf(w, "%-16s %s\n", "Oldest event:", st.OldestAge.Round(time.Millisecond))
			c := st.Counts
			fmt.Fprintf(w, "Since this node started: %d received, %d succeeded, %d retried, %d postponed, %d dropped, %d dead-lettered, %d to the failure destination\n",
				c.Received, c.Succeeded, c.Retried, c.Postponed, c.Dropped, c.DeadLettered, c.FailedToDestination)
			if len(st.RecentFailures) > 0 {
				fmt.Fprintln(w, "Recent failures:")
				for _, f := range st.RecentFailures {
					to := f.SentTo
					if to == "" {
						to = "dropped"
					}
					fmt.Fprintf(w, "  %s  %s  %s after %d attempts  %s  -> %s\n", f.Time.UTC().Format(time.RFC3339),
						f.RequestID, f.Condition, f.Attempts, f.ErrorType, to)
				}
			}
			return nil
		},
	}
}

// laminaCall calls one of Lamina's own operations (not part of AWS's API)
// with SigV4, sending in as JSON (when not nil) and decoding the JSON answer
// into out (when not nil).
func (o *clientOptions) laminaCall(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	data, err := o.laminaRequest(ctx, method, path, body)
	if err != nil || out == nil || len(data) == 0 {
		return err
	}
	return json.Unmarshal(data, out)
}

// laminaRequest sends a request signed with SigV4 and returns the body of
// a successful answer, or the AWS error an unsuccessful one carries.
func (o *clientOptions) laminaRequest(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	provider, err := o.credentials()
	if err != nil {
		return nil, err
	}
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, o.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", o.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Message string } // matches "message" too
		_ = json.Unmarshal(data, &e)
		return nil, fmt.Errorf("%s: %s", resp.Header.Get("X-Amzn-ErrorType"), e.Message)
	}
	return data, nil
}
