package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/lamina-project/lamina/internal/server"
	"github.com/spf13/cobra"
)

var accountIDRE = regexp.MustCompile(`^\d{12}$`)

func newServerCommand() *cobra.Command {
	cfg := server.Config{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a complete Lamina node (API, store, workers) in this process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !accountIDRE.MatchString(cfg.AccountID) {
				return fmt.Errorf("--account-id must be 12 digits, got %q", cfg.AccountID)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			out := cmd.OutOrStdout()
			cfg.OnReady = func(r server.Ready) {
				if r.CredentialsCreated {
					fmt.Fprintf(out, "Generated an admin access key pair, stored in %s/credentials.\n", cfg.DataDir)
				}
				fmt.Fprintf(out, "Lamina is ready at %s\n\nUse it with the AWS CLI or SDKs:\n", r.Endpoint)
				fmt.Fprintf(out, "  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n",
					r.Credentials.AccessKeyID, r.Credentials.SecretAccessKey, cfg.Region)
				fmt.Fprintf(out, "  aws --endpoint-url %s lambda list-functions\n\nor with `lamina list` in another terminal.\n", r.Endpoint)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "address of the Lambda API")
	f.StringVar(&cfg.URLListen, "url-listen", "127.0.0.1:9080", "address of function URLs and HTTP APIs")
	f.StringVar(&cfg.DataDir, "data", defaultDataDir(), "data directory (JetStream storage, code cache, credentials)")
	f.StringVar(&cfg.Region, "region", "us-east-1", "AWS region this node answers as")
	f.StringVar(&cfg.AccountID, "account-id", "000000000000", "AWS account ID shown in ARNs")
	f.StringVar(&cfg.NATSListen, "nats-listen", "", "also open the embedded NATS server on this host:port (default: in-process only)")
	f.IntVar(&cfg.ConcurrencyLimit, "concurrency-limit", 1000, "account concurrent executions limit")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 10*time.Minute, "how long an idle execution environment is kept warm")
	f.IntVar(&cfg.MemoryBudgetMB, "memory-budget", 0, "MB of function memory this node runs at once, also the memory limit of all sandboxes together (default: 80% of the machine's memory)")
	f.Int64Var(&cfg.NodePids, "node-pids-max", 0, "processes and threads of all sandboxes together (default: half of what the host has left at start, from kernel.pid_max and the threads running)")
	f.DurationVar(&cfg.LogRetention, "log-retention", 7*24*time.Hour, "how long function logs are kept")
	f.Float64Var(&cfg.AsyncTimeScale, "async-time-scale", 1, "multiply every asynchronous-invocation timing (retry waits, backoff, maximum event age) by this; tests use e.g. 0.01")
	f.IntVar(&cfg.AsyncConcurrency, "async-concurrency", 0, "asynchronous invocations of one function run at once on this node (default: min(32, concurrency limit / 2))")
	f.Float64Var(&cfg.ScheduleTimeScale, "schedule-time-scale", 1, "multiply the period of rate schedules by this; tests use e.g. 0.01")
	f.StringVar(&cfg.Sandbox, "sandbox", "namespace", "isolation of execution environments: namespace, or process (none: only for hosts that cannot run namespaces)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// Execute runs the root command with the process's arguments and exits
// non-zero with a one-line error on failure.
func Execute() {
	if err := NewRootCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "lamina:", err)
		os.Exit(1)
	}
}
