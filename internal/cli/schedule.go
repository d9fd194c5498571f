package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lamina-project/lamina/internal/sdkhttp"
	"github.com/spf13/cobra"
)

// eventsClient returns an aws-sdk-go-v2 EventBridge client for the
// endpoint, which serves schedule rules.
func (o *clientOptions) eventsClient() (*eventbridge.Client, error) {
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	return eventbridge.New(eventbridge.Options{Region: o.region, BaseEndpoint: aws.String(o.endpoint), Credentials: creds, HTTPClient: sdkhttp.Client()}), nil
}

// scheduleStatementID is the ID of the statement that lets the rule called
// rule invoke its function: rule names may hold dots, statement IDs not.
func scheduleStatementID(rule string) string {
	return "events-" + strings.ReplaceAll(rule, ".", "_")
}

// newScheduleCommand groups the commands that manage schedule rules
// through the EventBridge API.
func newScheduleCommand(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Run functions on a schedule: rate(...) or cron(...) rules"}
	var input string
	create := &cobra.Command{
		Use:   "create NAME EXPRESSION FUNCTION",
		Short: `Invoke FUNCTION on EXPRESSION, e.g. "rate(5 minutes)" or "cron(0 12 * * ? *)" (UTC); adds the permission EventBridge needs to FUNCTION's policy`,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.eventsClient()
			if err != nil {
				return err
			}
			lc, err := opts.lambdaClient()
			if err != nil {
				return err
			}
			fn, err := lc.GetFunctionConfiguration(cmd.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(args[2])})
			if err != nil {
				return err
			}
			rule, err := client.PutRule(cmd.Context(), &eventbridge.PutRuleInput{Name: aws.String(args[0]), ScheduleExpression: aws.String(args[1])})
			if err != nil {
				return err
			}
			// As the console does when it adds a function target: let
			// EventBridge invoke the function for this rule.
			_, err = lc.AddPermission(cmd.Context(), &lambda.AddPermissionInput{
				FunctionName: fn.FunctionArn, StatementId: aws.String(scheduleStatementID(args[0])),
				Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("events.amazonaws.com"), SourceArn: rule.RuleArn,
			})
			var conflict *lambdatypes.ResourceConflictException
			if err != nil && !errors.As(err, &conflict) { // a conflict: it has the permission already
				return err
			}
			target := types.Target{Id: aws.String(args[0] + "-target"), Arn: fn.FunctionArn}
			if input != "" {
				target.Input = aws.String(input)
			}
			out, err := client.PutTargets(cmd.Context(), &eventbridge.PutTargetsInput{Rule: aws.String(args[0]), Targets: []types.Target{target}})
			if err != nil {
				return err
			}
			if out.FailedEntryCount > 0 {
				return fmt.Errorf("target refused: %s", aws.ToString(out.FailedEntries[0].ErrorMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Scheduled %s: %s -> %s\n", aws.ToString(rule.RuleArn), args[1], aws.ToString(fn.FunctionArn))
			return nil
		},
	}
	create.Flags().StringVar(&input, "input", "", "JSON the function receives instead of the Scheduled Event")

	list := &cobra.Command{
		Use:   "list",
		Short: "List schedule rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := opts.eventsClient()
			if err != nil {
				return err
			}
			out, err := client.ListRules(cmd.Context(), &eventbridge.ListRulesInput{})
			if err != nil {
				return err
			}
			if opts.output == "json" {
				return writeJSON(cmd.OutOrStdout(), out.Rules)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tSCHEDULE\tTARGETS")
			for _, r := range out.Rules {
				targets, err := client.ListTargetsByRule(cmd.Context(), &eventbridge.ListTargetsByRuleInput{Rule: r.Name})
				if err != nil {
					return err
				}
				var arns []string
				for _, t := range targets.Targets {
					arns = append(arns, aws.ToString(t.Arn))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", aws.ToString(r.Name), r.State, aws.ToString(r.ScheduleExpression), arns)
			}
			return tw.Flush()
		},
	}
	state := func(use, short string, enable bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				client, err := opts.eventsClient()
				if err != nil {
					return err
				}
				if enable {
					_, err = client.EnableRule(cmd.Context(), &eventbridge.EnableRuleInput{Name: aws.String(args[0])})
				} else {
					_, err = client.DisableRule(cmd.Context(), &eventbridge.DisableRuleInput{Name: aws.String(args[0])})
				}
				return err
			},
		}
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a schedule rule and its targets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := opts.eventsClient()
			if err != nil {
				return err
			}
			_, err = client.DeleteRule(cmd.Context(), &eventbridge.DeleteRuleInput{Name: aws.String(args[0]), Force: true})
			return err
		},
	}
	cmd.AddCommand(create, list, state("enable", "Enable a rule", true), state("disable", "Disable a rule", false), del)
	return cmd
}
