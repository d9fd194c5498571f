package cli

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/lamina-project/lamina"
	"github.com/spf13/cobra"
)

// followInterval is how often `lamina logs --follow` asks for new events.
const followInterval = time.Second

func newLogsCommand(opts *clientOptions) *cobra.Command {
	var follow bool
	var since time.Duration
	var filter string
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's logs (log group /aws/lambda/NAME)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.logsClient()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			in := &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String(lamina.LogGroup(args[0])),
				StartTime:    aws.Int64(time.Now().Add(-since).UnixMilli()),
			}
			if filter != "" {
				in.FilterPattern = aws.String(filter)
			}
			seen := map[string]bool{}
			for {
				pages := cloudwatchlogs.NewFilterLogEventsPaginator(client, in)
				for pages.HasMorePages() {
					page, err := pages.NextPage(cmd.Context())
					if err != nil {
						return err
					}
					for _, e := range page.Events {
						id := aws.ToString(e.EventId)
						if seen[id] {
							continue
						}
						seen[id] = true
						ts := time.UnixMilli(aws.ToInt64(e.Timestamp)).UTC().Format("2006-01-02T15:04:05.000Z")
						if opts.output == "json" {
							if err := writeJSON(w, map[string]any{"timestamp": ts, "stream": aws.ToString(e.LogStreamName), "message": aws.ToString(e.Message)}); err != nil {
								return err
							}
						} else {
							fmt.Fprintf(w, "%s %s\n", ts, aws.ToString(e.Message))
						}
						if t := aws.ToInt64(e.Timestamp); t > aws.ToInt64(in.StartTime) {
							in.StartTime = aws.Int64(t)
						}
					}
				}
				if !follow {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(followInterval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	f.DurationVar(&since, "since", time.Hour, "show events from this long ago")
	f.StringVar(&filter, "filter", "", "only events containing every term of this pattern")
	return cmd
}
