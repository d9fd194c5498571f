package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/lamina-project/lamina/internal/eventbus"
	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/lamina-project/lamina/internal/server"
	"github.com/lamina-project/lamina/internal/services/kinesis"
	"github.com/lamina-project/lamina/internal/services/s3"
	"github.com/lamina-project/lamina/internal/services/sns"
	"github.com/lamina-project/lamina/internal/services/sqs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var accountIDRE = regexp.MustCompile(`^\d{12}$`)

func newServerCommand() *cobra.Command {
	cfg := server.Config{}
	var noConsole bool
	var logLevel string
	var fnNet functionNetworkFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a complete Lamina node (API, store, workers) in this process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !accountIDRE.MatchString(cfg.AccountID) {
				return fmt.Errorf("--account-id must be 12 digits, got %q", cfg.AccountID)
			}
			var level slog.Level
			err := level.UnmarshalText([]byte(logLevel))
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if cfg.FunctionNetwork, err = fnNet.config(); err != nil {
				return err
			}
			cfg.Cluster.Secret = os.Getenv("LAMINA_CLUSTER_SECRET")
			cfg.Cluster.NATSPassword = os.Getenv("LAMINA_NATS_PASSWORD")
			cfg.Cluster.NATSToken = os.Getenv("LAMINA_NATS_TOKEN")
			out := cmd.OutOrStdout()
			cfg.OnReady = func(r server.Ready) {
				if r.CredentialsCreated {
					fmt.Fprintf(out, "Generated an admin access key pair, stored in %s/credentials.\n", cfg.DataDir)
				}
				fmt.Fprintf(out, "Lamina is ready at %s\n\nUse it with the AWS CLI or SDKs:\n", r.Endpoint)
				fmt.Fprintf(out, "  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n",
					r.Credentials.AccessKeyID, r.Credentials.SecretAccessKey, cfg.Region)
				fmt.Fprintf(out, "  aws --endpoint-url %s lambda list-functions\n\nor with `lamina list` in another terminal.\n", r.Endpoint)
				if !noConsole {
					fmt.Fprintf(out, "The web console is at %s/console/ (sign in with the key pair above).\n", r.Endpoint)
				}
			}
			cfg.NoConsole = noConsole
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
	c := &cfg.Cluster
	f.StringVar(&c.NodeName, "node-name", "", "this node's name in a cluster, kept in the data directory (default: the host's name and a random suffix, made up on first start)")
	f.StringVar(&c.Listen, "cluster-listen", "", "host:port where the embedded NATS server takes routes from the other nodes; clusters this node with --cluster-peers (route password: env LAMINA_CLUSTER_SECRET)")
	f.StringSliceVar(&c.Peers, "cluster-peers", nil, "route addresses (host:port) of the cluster's nodes, this one's own may be listed: the same list on every node (comma-separated or repeated)")
	f.StringVar(&c.Name, "cluster-name", "lamina", "name of the NATS cluster the embedded servers form")
	f.StringVar(&c.NATSURL, "nats-url", "", "keep the store on this external NATS cluster (nats://host:port, comma-separated) instead of an embedded server (password: env LAMINA_NATS_PASSWORD, token: env LAMINA_NATS_TOKEN)")
	f.StringVar(&c.NATSCreds, "nats-creds", "", "credentials file (JWT and NKey seed) for --nats-url")
	f.StringVar(&c.NATSUser, "nats-user", "", "user name for --nats-url, with the password in env LAMINA_NATS_PASSWORD")
	f.IntVar(&c.Replicas, "replicas", 0, "replicas JetStream keeps of every bucket and stream (default: 1 alone; 3 in a cluster of 3 nodes or more, 2 of two; 3 on an external NATS cluster)")
	f.IntVar(&cfg.ConcurrencyLimit, "concurrency-limit", 1000, "account concurrent executions limit")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 10*time.Minute, "how long an idle execution environment is kept warm")
	f.IntVar(&cfg.MemoryBudgetMB, "memory-budget", 0, "MB of function memory this node runs at once, also the memory limit of all sandboxes together (default: 80% of the machine's memory)")
	f.Int64Var(&cfg.NodePids, "node-pids-max", 0, "processes and threads of all sandboxes together (default: half of what the host has left at start, from kernel.pid_max and the threads running)")
	f.IntVar(&cfg.StoreMaxMB, "store-max", 0, fmt.Sprintf("MB of disk the store may use (default: half of the data directory's filesystem, at most three quarters of its free space; at least %d)", server.MinStoreMB))
	f.IntVar(&cfg.S3MaxMB, "s3-max", 0, "MB of disk S3 object bodies may use (default: a fifth of --store-max)")
	f.IntVar(&cfg.S3MaxStreams, "s3-max-streams", s3.DefaultMaxStreams, "S3 object bodies streamed to or from clients at once, 1 MiB of memory each; more wait")
	f.StringVar(&cfg.TmpDir, "tmp-dir", "", "directory of the environments' /tmp disks, sparse images that take space as functions write (default: DATA/sandboxes/images)")
	f.DurationVar(&cfg.LogRetention, "log-retention", 7*24*time.Hour, "how long function logs are kept")
	f.Float64Var(&cfg.AsyncTimeScale, "async-time-scale", 1, "multiply every asynchronous-invocation timing (retry waits, backoff, maximum event age) by this; tests use e.g. 0.01")
	f.IntVar(&cfg.AsyncConcurrency, "async-concurrency", 0, "asynchronous invocations of one function run at once on this node (default: min(32, concurrency limit / 2))")
	f.Float64Var(&cfg.ScheduleTimeScale, "schedule-time-scale", 1, "multiply the period of rate schedules by this; tests use e.g. 0.01")
	f.StringVar(&cfg.Sandbox, "sandbox", "namespace", "isolation of execution environments: namespace, or process (none: only for hosts that cannot run namespaces)")
	f.StringArrayVar(&cfg.Runtimes.Interpreters, "interpreter", nil, "RUNTIME=PATH: run RUNTIME (e.g. python3.13) on the interpreter at PATH, an ELF executable in PREFIX/bin whose PREFIX functions see read-only (repeatable)")
	f.StringArrayVar(&cfg.Runtimes.Dirs, "runtimes-dir", nil, "directory of interpreter installations, one per subdirectory with bin/python3.X or bin/node, found like pyenv's (repeatable)")
	f.StringArrayVar(&cfg.Runtimes.Map, "runtime-map", nil, "RUNTIME=RUNTIME: run functions of the first runtime on the second's interpreter, e.g. python3.13=python3.12 (repeatable)")
	f.StringArrayVar(&cfg.Runtimes.SDKs, "sdk", nil, "FAMILY=DIR: offer functions of the python or nodejs runtimes the AWS SDK in DIR (pip install --target DIR boto3; npm install --prefix DIR @aws-sdk/client-…), below their own code and layers (repeatable)")
	f.BoolVar(&noConsole, "no-console", false, "do not serve the web console at /console/ on the API listener")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "also serve GET /metrics without authentication on this host:port, for Prometheus (the API's /metrics needs SigV4)")
	q := &cfg.Queues
	f.IntVar(&q.MaxQueues, "queue-max-queues", sqs.DefaultLimits.MaxQueues, "SQS queues the account may have")
	f.IntVar(&q.MaxQueueMessages, "queue-max-messages", sqs.DefaultLimits.MaxQueueMessages, "messages one SQS queue holds; a send to a full queue fails with OverLimit")
	f.IntVar(&q.MaxPolls, "queue-max-polls", sqs.DefaultLimits.MaxPolls, "SQS long polls waiting at once on this node; more are answered RequestThrottled")
	f.IntVar(&q.MaxPollsPerQueue, "queue-max-polls-per-queue", sqs.DefaultLimits.MaxPollsPerQueue, "SQS long polls waiting at once on this node for one queue")
	k := &cfg.Streams
	f.IntVar(&k.MaxStreams, "stream-max-streams", kinesis.DefaultLimits.MaxStreams, "Kinesis streams the account may have")
	f.IntVar(&k.MaxShards, "stream-max-shards", kinesis.DefaultLimits.MaxShards, "shards of all the account's Kinesis streams together (at most 10000)")
	f.IntVar(&k.OnDemandShards, "stream-on-demand-shards", kinesis.DefaultLimits.OnDemandShards, "shards of a Kinesis stream created in ON_DEMAND mode")
	f.BoolVar(&k.Unthrottled, "stream-unthrottled", false, "lift Kinesis's per-shard rates (1,000 records and 1 MiB written, 5 GetRecords and 2 MiB read per second)")
	t := &cfg.Topics
	f.IntVar(&t.MaxTopics, "topic-max-topics", sns.DefaultLimits.MaxTopics, "SNS topics the account may have")
	f.IntVar(&t.MaxSubscriptionsPerTopic, "topic-max-subscriptions", sns.DefaultLimits.MaxSubscriptionsPerTopic, "subscriptions one SNS topic may have")
	f.IntVar(&t.MaxDeliveries, "topic-max-deliveries", sns.DefaultLimits.MaxDeliveries, "SNS deliveries this node makes at once for all publishes; a publish waits for room, else is answered Throttled")
	f.IntVar(&cfg.MaxEventBuses, "max-event-buses", eventbus.DefaultMaxBuses, "custom EventBridge event buses the account may have")
	l := &cfg.Limits
	f.IntVar(&l.MaxConns, "max-conns", 0, "connections the API listener holds at once (default: half of what the open-file limit leaves after its reserve, at most 10000)")
	f.IntVar(&l.MaxConnsPerAddr, "max-conns-per-addr", 0, fmt.Sprintf("connections the API listener holds at once from one client address, IPv6 /64 (default: %d, or a quarter of --max-conns if less)", server.DefaultMaxConnsPerAddr))
	f.IntVar(&l.URLMaxConns, "url-max-conns", 0, "connections the function URL listener holds at once (default: as --max-conns)")
	f.IntVar(&l.URLMaxConnsPerAddr, "url-max-conns-per-addr", 0, "connections the function URL listener holds at once from one client address (default: as --max-conns-per-addr)")
	f.DurationVar(&l.HeaderTimeout, "header-timeout", server.DefaultHeaderTimeout, "time a client has to send a request's headers, and to start its body")
	f.DurationVar(&l.KeepAliveTimeout, "keepalive-timeout", server.DefaultKeepAliveTimeout, "an idle keep-alive connection is closed after this")
	f.IntVar(&l.MaxHeaderBytes, "max-header-bytes", server.DefaultMaxHeaderBytes, "size limit of a request's line and headers")
	f.Int64Var(&l.MinBodyRate, "min-body-rate", server.DefaultMinBodyRate, "bytes per second a request body must arrive at, on average, after --header-timeout")
	f.IntVar(&l.APIBodyBudgetMB, "api-body-budget", server.DefaultAPIBodyBudgetMB, "MB of request bodies the API holds in memory at once (code uploads count 3 times); more is answered 429 with Retry-After")
	f.IntVar(&l.URLBodyBudgetMB, "url-body-budget", server.DefaultURLBodyBudgetMB, "MB of request bodies the function URL listener holds in memory at once; more is answered 429 with Retry-After")
	fnNet.register(f)
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// functionNetworkFlags are the --function-network* flags.
type functionNetworkFlags struct {
	mode         string
	allow, deny  []string
	subnet       string
	dnsResolvers []string
}

func (n *functionNetworkFlags) register(f *pflag.FlagSet) {
	f.StringVar(&n.mode, "function-network", "internet", "what functions reach on the network: internet (public addresses and --function-network-allow), allowlist (only --function-network-allow) or none (only their own loopback)")
	f.StringSliceVar(&n.allow, "function-network-allow", nil, "CIDR or address functions may reach although private or unlisted (repeatable); never the host itself or other environments")
	f.StringSliceVar(&n.deny, "function-network-deny", nil, "CIDR or address functions never reach, even if allowed (repeatable)")
	f.StringVar(&n.subnet, "function-network-subnet", "", "IPv4 subnet of the functions' addresses, /16 to /29 (default: a free /22 of 10.217.0.0/16)")
	f.StringSliceVar(&n.dnsResolvers, "function-network-dns", nil, "resolver (address or address:port) that the functions' DNS forwarder asks (repeatable; default: those of the host's /etc/resolv.conf)")
}

// config checks the flags and returns the network configuration they ask
// for.
func (n *functionNetworkFlags) config() (sandbox.NetworkConfig, error) {
	mode, err := sandbox.ParseNetworkMode(n.mode)
	if err != nil {
		return sandbox.NetworkConfig{}, fmt.Errorf("--function-network: %w", err)
	}
	cfg := sandbox.NetworkConfig{Mode: mode}
	for _, list := range []struct {
		flag   string
		values []string
		into   *[]netip.Prefix
	}{{"--function-network-allow", n.allow, &cfg.Allow}, {"--function-network-deny", n.deny, &cfg.Deny}} {
		for _, v := range list.values {
			p, err := parsePrefix(v)
			if err != nil || !p.Addr().Is4() {
				return cfg, fmt.Errorf("%s: %q is not an IPv4 CIDR or address", list.flag, v)
			}
			*list.into = append(*list.into, p)
		}
	}
	if n.subnet != "" {
		if cfg.Subnet, err = netip.ParsePrefix(n.subnet); err != nil {
			return cfg, fmt.Errorf("--function-network-subnet: %w", err)
		}
	}
	for _, v := range n.dnsResolvers {
		ap, err := netip.ParseAddrPort(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return cfg, fmt.Errorf("--function-network-dns: %q is not an address or address:port", v)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		cfg.DNS = append(cfg.DNS, ap)
	}
	if mode == sandbox.NetworkAllowlist && len(cfg.Allow) == 0 {
		return cfg, errors.New("--function-network allowlist needs at least one --function-network-allow")
	}
	return cfg, nil
}

// parsePrefix parses a CIDR, or an address as a single-address prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// Execute runs the root command with the process's arguments and exits
// non-zero with a one-line error on failure.
func Execute() {
	root := NewRootCommand()
	if err := root.ExecuteContext(context.Background()); err != nil {
		endpoint := envOr("LAMINA_ENDPOINT", "http://127.0.0.1:9000")
		if cmd, _, ferr := root.Find(os.Args[1:]); ferr == nil {
			if f := cmd.Flags().Lookup("endpoint"); f != nil {
				endpoint = f.Value.String()
			}
		}
		fmt.Fprintln(os.Stderr, "lamina:", explain(err, endpoint))
		os.Exit(1)
	}
}
