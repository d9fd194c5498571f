// Package server assembles a complete Lamina node: the data directory, the
// embedded NATS server with JetStream, the store, and the HTTP frontend.
// `lamina server` is a thin command around Run.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/async"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/concurrency"
	"github.com/lamina-project/lamina/internal/console"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/deploy"
	"github.com/lamina-project/lamina/internal/eventbus"
	"github.com/lamina-project/lamina/internal/eventsource"
	"github.com/lamina-project/lamina/internal/frontend"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/manager"
	"github.com/lamina-project/lamina/internal/netlimit"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/recursion"
	"github.com/lamina-project/lamina/internal/remote"
	"github.com/lamina-project/lamina/internal/runtimes"
	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/lamina-project/lamina/internal/scheduler"
	"github.com/lamina-project/lamina/internal/services/cloudformation"
	"github.com/lamina-project/lamina/internal/services/kinesis"
	"github.com/lamina-project/lamina/internal/services/s3"
	"github.com/lamina-project/lamina/internal/services/sns"
	"github.com/lamina-project/lamina/internal/services/sqs"
	"github.com/lamina-project/lamina/internal/services/ssm"
	"github.com/lamina-project/lamina/internal/services/sts"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
	"github.com/lamina-project/lamina/internal/worker"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// Config is the configuration of one node.
type Config struct {
	Listen     string // address of the Lambda API, e.g. "127.0.0.1:9000"
	URLListen  string // address of function URLs and HTTP APIs, e.g. "127.0.0.1:9080"
	DataDir    string // root of everything the node keeps on disk
	Region     string // e.g. "us-east-1"
	AccountID  string // 12 digits
	NATSListen string // "host:port" to open NATS to other processes; empty keeps it in-process only
	// Cluster says how the node joins others; the zero value runs a single
	// node.
	Cluster ClusterConfig
	// MetricsListen, when set, is the "host:port" of a listener that serves
	// GET /metrics without authentication, for Prometheus. The API's own
	// /metrics requires SigV4.
	MetricsListen string
	// NoConsole turns the web console (/console/ on the API listener) off.
	NoConsole bool
	// Limits bound the API and URL listeners.
	Limits Limits
	// ConcurrencyLimit is the account's concurrent executions limit.
	ConcurrencyLimit int
	// IdleTimeout is how long an idle execution environment is kept warm.
	IdleTimeout time.Duration
	// MemoryBudgetMB bounds the sum of MemorySize of the node's live
	// environments; zero means 80% of the machine's memory. The namespace
	// sandbox also limits the memory of all sandboxes together to it.
	MemoryBudgetMB int
	// NodePids bounds the processes and threads of all of the node's
	// namespace sandboxes together; zero means sandbox.DefaultNodePids().
	NodePids int64
	// TmpDir is where the execution environments' /tmp disks (or, with the
	// process sandbox, their scratch directories) live; empty means
	// DataDir/sandboxes/images (DataDir/sandboxes with the process sandbox).
	TmpDir string
	// LogRetention is how long function logs are kept; zero means 7 days.
	LogRetention time.Duration
	// AsyncTimeScale multiplies every asynchronous-invocation timing (retry
	// delays, backoff, maximum event age); zero means 1, AWS's timings. Tests
	// compress time with it.
	AsyncTimeScale float64
	// AsyncConcurrency bounds the asynchronous invocations of one function
	// that run at once on this node; zero means the smaller of 32 and half
	// the account's concurrency limit.
	AsyncConcurrency int
	// Queues bound the SQS-compatible queues; zero values take
	// sqs.DefaultLimits'.
	Queues sqs.Limits
	// S3MaxMB is the disk, in MB, S3's object bodies may use; zero means
	// their share of the store.
	S3MaxMB int
	// S3MaxStreams bounds the S3 object bodies streamed at once; zero
	// means s3.DefaultMaxStreams.
	S3MaxStreams int
	// Streams bound the Kinesis-compatible streams; zero values take
	// kinesis.DefaultLimits'.
	Streams kinesis.Limits
	// Topics bound the SNS-compatible topics; zero values take
	// sns.DefaultLimits'.
	Topics sns.Limits
	// MaxEventBuses bounds the custom EventBridge buses; zero means
	// eventbus.DefaultMaxBuses.
	MaxEventBuses int
	// StoreMaxMB is the disk, in MB, the store (JetStream) may use; zero
	// sizes it to the data directory's filesystem (see disk.go).
	StoreMaxMB int
	// ScheduleTimeScale multiplies the period of rate schedules; zero means
	// 1. Tests compress time with it.
	ScheduleTimeScale float64
	// Sandbox selects the isolation of execution environments: "namespace"
	// (the default) or "process" (no isolation, for hosts that cannot run
	// namespace sandboxes, and for debugging).
	Sandbox string
	// Runtimes says where to find interpreters beyond the usual places and
	// which runtimes to substitute (--runtime, --runtimes-dir, --runtime-map).
	Runtimes runtimes.Options
	// FunctionNetwork is what environments of the namespace sandbox reach on
	// the network; the zero Mode means internet.
	FunctionNetwork sandbox.NetworkConfig
	Logger          *slog.Logger
	// OnReady, when set, is called once the API accepts requests.
	OnReady func(Ready)
}

// Ready tells how to reach a node that has started.
type Ready struct {
	Endpoint           string // e.g. "http://127.0.0.1:9000"
	Credentials        credentials.Pair
	CredentialsCreated bool // the pair was generated by this start
}

// shutdownGrace bounds how long requests in flight may finish at shutdown.
const shutdownGrace = 10 * time.Second

// leaveTimeout bounds how long a node stopping tries to remove its
// heartbeat; the others count it out when the heartbeat expires anyway.
const leaveTimeout = 2 * time.Second

// codeSweepInterval is how often unreferenced code archives are deleted.
const codeSweepInterval = 10 * time.Minute

// Run starts a node and serves until ctx is cancelled, then shuts down
// cleanly. Errors are one line that says what is wrong.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Limits.check(); err != nil {
		return err
	}
	if err := cfg.Cluster.check(cfg.NATSListen); err != nil {
		return err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	node, err := nodeName(cfg.DataDir, cfg.Cluster.NodeName)
	if err != nil {
		return err
	}
	if !cfg.Cluster.external() {
		if err := checkStoreMode(filepath.Join(cfg.DataDir, natsDirName), cfg.Cluster.embedded()); err != nil {
			return err
		}
	}
	// A cluster's admin pair is in the store, read once it is open.
	var creds credentials.Pair
	var created bool
	if cfg.Cluster.clustered() {
		_, _, err = credentials.FromEnv()
	} else {
		creds, created, err = credentials.Ensure(cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	// The runtimes come first: a bad --interpreter or --runtime-map is the
	// one line the server prints.
	cacheDir := filepath.Join(cfg.DataDir, "cache")
	runtimeOpts := cfg.Runtimes
	runtimeOpts.Logger = log
	rts, err := runtimes.Install(cacheDir, runtimeOpts)
	if err != nil {
		return err
	}
	fdLimit, err := raiseFDLimit()
	if err != nil {
		return err
	}
	fds := planFDs(fdLimit)
	limits := cfg.Limits.withDefaults(fds)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, unwrapSyscall(err))
	}
	defer ln.Close()
	urlLn, err := net.Listen("tcp", cfg.URLListen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (--url-listen): %w", cfg.URLListen, unwrapSyscall(err))
	}
	defer urlLn.Close()
	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("cannot listen on %s (--metrics-listen): %w", cfg.MetricsListen, unwrapSyscall(err))
		}
		defer metricsLn.Close()
	}
	limits.logBudget(fds, log)

	started := time.Now()
	health := store.NewHealth(log.With("part", "store"))
	conn, embedded, storeLimits, err := connectNATS(ctx, cfg, node, health, log)
	if err != nil {
		return err
	}
	if embedded != nil {
		defer embedded.stop()
	} else {
		defer conn.Close()
	}
	log.Info("store limits", "store_mb", storeLimits.Max>>20, "code_mb", storeLimits.Code>>20, "logs_mb", storeLimits.Logs>>20, "async_mb", storeLimits.Async>>20, "queues_mb", storeLimits.Queues>>20, "streams_mb", storeLimits.Streams>>20)
	// In a cluster, each step waits while JetStream is not ready: the other
	// nodes may still be starting.
	open := func(what string, step func(ctx context.Context) error) error {
		if cfg.Cluster.clustered() {
			return untilFormed(ctx, log, what, step)
		}
		return step(ctx)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		return err
	}
	var replicas int
	if err := open("JetStream", func(ctx context.Context) (err error) {
		// Asked often while the cluster forms, to be ready soon after it has.
		ctx, cancel := context.WithTimeout(ctx, formProbeTimeout)
		defer cancel()
		replicas, err = storeReplicas(ctx, js, cfg.Cluster.replicas(conn), log)
		return err
	}); err != nil {
		return err
	}
	var st *store.Store
	if err := open("store", func(ctx context.Context) (err error) {
		st, err = store.Open(ctx, conn, store.Options{Replicas: replicas, CodeMaxBytes: storeLimits.Code, Health: health})
		return err
	}); err != nil {
		return err
	}
	defer st.Close()
	if cfg.Cluster.clustered() {
		if err := open("credentials", func(ctx context.Context) (err error) {
			creds, created, err = clusterCredentials(ctx, st, cfg.DataDir)
			return err
		}); err != nil {
			return err
		}
	}
	var codeURLKey, sessionKey []byte
	if err := open("secrets", func(ctx context.Context) (err error) {
		if codeURLKey, err = st.Secret(ctx, "code-url", 32); err != nil {
			return err
		}
		sessionKey, err = st.Secret(ctx, "function-credentials", 32)
		return err
	}); err != nil {
		return err
	}
	sessions := credentials.NewIssuer(sessionKey)
	var logStore *logs.Store
	if err := open("logs", func(ctx context.Context) (err error) {
		logStore, err = logs.Open(ctx, st.JetStream(), logs.Options{Retention: cfg.LogRetention, MaxBytes: storeLimits.Logs, Replicas: replicas, Logger: log, Health: health, Tables: st})
		return err
	}); err != nil {
		return err
	}
	var queues *sqs.Service
	if err := open("queues", func(ctx context.Context) (err error) {
		queues, err = sqs.Open(ctx, sqs.Config{Region: cfg.Region, AccountID: cfg.AccountID, Store: st, MaxBytes: storeLimits.Queues,
			Limits: cfg.Queues, Logger: log})
		return err
	}); err != nil {
		return err
	}
	defer queues.Close()
	var streams *kinesis.Service
	if err := open("streams", func(ctx context.Context) (err error) {
		streams, err = kinesis.Open(ctx, kinesis.Config{Region: cfg.Region, AccountID: cfg.AccountID, Store: st, MaxBytes: storeLimits.Streams,
			Limits: cfg.Streams, Logger: log})
		return err
	}); err != nil {
		return err
	}
	rts.Log(log)
	budget := cfg.MemoryBudgetMB
	if budget == 0 {
		budget = defaultMemoryBudgetMB()
	}
	provider, closeNetwork, err := sandboxProvider(cfg, budget, log)
	if err != nil {
		return err
	}
	// The worker's environments go first (deferred below), then the
	// provider's prepared sandboxes, which hold namespaces of the network.
	defer closeNetwork()
	defer provider.Close()
	log.Info("execution environments", "sandbox", provider.Name(), "memory_budget_mb", budget)
	if ns, ok := provider.(*sandbox.NamespaceProvider); ok && ns.TmpfsReason() != "" {
		log.Warn("functions' /tmp is a tmpfs charged to their memory", "reason", ns.TmpfsReason())
	}
	registry := prometheus.NewRegistry()
	// Every series carries the node's name, so that a cluster's are told
	// apart wherever they are collected.
	metricsReg := prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, registry)
	metricsReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	netMetrics := netlimit.NewMetrics(metricsReg)
	// Environments' AWS endpoints serve the API in process once it exists:
	// the frontend is made after the worker.
	var api atomic.Pointer[http.Handler]
	endpointAPI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := api.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Lamina is starting", http.StatusServiceUnavailable)
	})
	wk := worker.New(worker.Config{
		Region:         cfg.Region,
		CacheDir:       cacheDir,
		Sandbox:        provider,
		Runtimes:       rts,
		Store:          st,
		Logs:           logStore,
		Metrics:        worker.NewMetrics(metricsReg),
		IdleTimeout:    cfg.IdleTimeout,
		MemoryBudgetMB: budget,
		Endpoint:       &worker.Endpoint{Credentials: sessions, API: endpointAPI},
		Logger:         log,
	})
	defer wk.Close()
	// In a cluster, the other nodes' managers place invocations on this
	// node's worker: it serves them before the node joins.
	var serving *remote.Server
	remoteMetrics := remote.NewMetrics(metricsReg)
	if cfg.Cluster.clustered() {
		if serving, err = remote.Serve(conn, node, wk, remote.ServerOptions{Metrics: remoteMetrics, Logger: log}); err != nil {
			return err
		}
	}
	var members *cluster.Membership
	if err := open("membership", func(ctx context.Context) (err error) {
		members, err = cluster.Join(ctx, st.JetStream(), cluster.Config{
			Self: cluster.Node{ID: node, APIEndpoint: endpoint(ln.Addr()), URLEndpoint: endpoint(urlLn.Addr()), MemoryBudgetMB: budget},
			Usage: func() cluster.Usage {
				st, _ := wk.State(context.Background())
				return cluster.Usage{MemoryInUseMB: st.MemoryUsedMB, MemoryBusyMB: st.BusyMB, MemoryEvictableMB: st.EvictableMB, Environments: st.Environments}
			},
			Replicas: replicas,
			Logger:   log,
		})
		return err
	}); err != nil {
		return err
	}
	leave := func() {
		leaveCtx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		defer cancel()
		members.Close(leaveCtx)
	}
	defer leave()
	mgrCfg := manager.Config{
		Worker:           wk,
		Store:            st,
		ConcurrencyLimit: cfg.ConcurrencyLimit,
		Metrics:          manager.NewMetrics(metricsReg),
		Logger:           log,
	}
	var leases *concurrency.Leases
	if cfg.Cluster.clustered() {
		client, err := remote.NewClient(conn, remote.ClientOptions{Metrics: remoteMetrics})
		if err != nil {
			return err
		}
		defer client.Close()
		// Metrics are registered once, outside the step a forming cluster
		// retries.
		leaseMetrics := concurrency.NewMetrics(metricsReg)
		if err := open("concurrency pools", func(ctx context.Context) (err error) {
			leases, err = concurrency.Open(ctx, st.JetStream(), conn, concurrency.Config{
				Node: node, Instance: members.Self().Instance, Members: liveInstances(members), Fresh: freshMember(members),
				ReclaimAfter: reclaimAfter(members), Replicas: replicas, Metrics: leaseMetrics, Logger: log})
			return err
		}); err != nil {
			return err
		}
		mgrCfg.Nodes, mgrCfg.Remote, mgrCfg.Counter = members, client.Worker, leases
	}
	mgr := manager.New(mgrCfg)
	var queue *async.Queue
	if err := open("async queue", func(ctx context.Context) (err error) {
		queue, err = async.OpenQueue(ctx, st.JetStream(), async.QueueOptions{Replicas: replicas, MaxBytes: storeLimits.Async, FailuresMaxBytes: storeLimits.Failures, Health: health})
		return err
	}); err != nil {
		return err
	}
	asyncConcurrency := cfg.AsyncConcurrency
	if asyncConcurrency == 0 {
		asyncConcurrency = max(1, min(32, cfg.ConcurrencyLimit/2))
	}
	// Functions' resource-based policies: what every service that invokes
	// functions on behalf of its resources asks before it invokes
	// (policies.MayInvoke), through the router every delivery to a
	// function, queue, topic or bus goes through.
	policies := &policy.Checker{Store: st, Region: cfg.Region, AccountID: cfg.AccountID}
	// loops stops recursive loops through queues and topics.
	loops := recursion.NewGuard(metricsReg, log)
	router := &targets.Router{Region: cfg.Region, AccountID: cfg.AccountID, Queues: queues, Policies: policies,
		Loops: loops, Resolve: mgr.Resolve}
	dispatcher := async.NewDispatcher(async.Config{
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Queue:     queue,
		Manager:   mgr,
		Deliver:   router.Deliver,
		Configs: func(ctx context.Context, function, qualifier string) (*lamina.EventInvokeConfig, error) {
			c, err := st.GetEventInvokeConfig(ctx, function, qualifier)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			return c, err
		},
		TimeScale:   cfg.AsyncTimeScale,
		Concurrency: asyncConcurrency,
		Metrics:     async.NewMetrics(metricsReg),
		Logger:      log,
	})
	background, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go (&healer{dataDir: cfg.DataDir, nats: embedded, store: st, health: health, log: log.With("part", "store")}).run(background)
	go wk.Run(background)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		logStore.Run(background)
	}()
	defer func() { stopBackground(); <-logsDone }()
	go mgr.Run(background)
	if leases != nil {
		leasesDone := make(chan struct{})
		go func() {
			defer close(leasesDone)
			leases.Run(background)
		}()
		// Unused shares go back before the node leaves.
		defer func() { stopBackground(); <-leasesDone }()
	}
	router.Functions = dispatcher
	var topics *sns.Service
	if err := open("topics", func(ctx context.Context) (err error) {
		signingKey, err := st.Secret(ctx, "sns-signing", 32)
		if err != nil {
			return err
		}
		topics, err = sns.Open(ctx, sns.Config{Region: cfg.Region, AccountID: cfg.AccountID, Store: st, Targets: router,
			Endpoint: "http://" + ln.Addr().String(), SigningKey: signingKey, Limits: cfg.Topics, Logger: log})
		return err
	}); err != nil {
		return err
	}
	router.Topics = topics
	var buses *eventbus.Service
	if err := open("event buses", func(ctx context.Context) (err error) {
		buses, err = eventbus.Open(ctx, eventbus.Config{Region: cfg.Region, AccountID: cfg.AccountID, Store: st, Targets: router,
			MaxBuses: cfg.MaxEventBuses, Logger: log})
		return err
	}); err != nil {
		return err
	}
	router.Buses = buses
	go scheduler.New(scheduler.Config{
		Region: cfg.Region, AccountID: cfg.AccountID, Store: st, Deliver: router.Deliver,
		TimeScale: cfg.ScheduleTimeScale, Logger: log,
	}).Run(background)
	asyncDone := make(chan struct{})
	go func() {
		defer close(asyncDone)
		if err := dispatcher.Run(background); err != nil {
			log.Error("async dispatcher failed", "err", err)
		}
	}()
	defer func() { stopBackground(); <-asyncDone }()

	var mappings *eventsource.Service
	mappingMetrics := eventsource.NewMetrics(metricsReg) // once, outside the step a forming cluster retries
	if err := open("event source mappings", func(ctx context.Context) (err error) {
		streamSource, err := eventsource.NewKinesis(ctx, st, eventsource.Kinesis{Streams: streams, Queues: queues, Region: cfg.Region, AccountID: cfg.AccountID, Logger: log})
		if err != nil {
			return err
		}
		mappings, err = eventsource.Open(ctx, eventsource.Config{Region: cfg.Region, AccountID: cfg.AccountID, Node: node, Store: st, Metrics: mappingMetrics, Recursion: loops,
			Manager: mgr, ConcurrencyLimit: cfg.ConcurrencyLimit, Logger: log,
			Sources: []eventsource.Source{&eventsource.SQS{Queues: queues, Region: cfg.Region, AccountID: cfg.AccountID, Logger: log},
				streamSource}})
		return err
	}); err != nil {
		return err
	}
	mappingsDone := make(chan struct{})
	go func() {
		defer close(mappingsDone)
		mappings.Run(background)
	}()
	defer func() { stopBackground(); <-mappingsDone }()

	var objects *s3.Service
	if err := open("S3", func(ctx context.Context) (err error) {
		maxBytes := storeLimits.Objects
		if cfg.S3MaxMB > 0 {
			maxBytes = int64(cfg.S3MaxMB) << 20
		}
		objects, err = s3.Open(ctx, s3.Config{Region: cfg.Region, AccountID: cfg.AccountID, Store: st, Submit: dispatcher.Submit,
			Functions: functionsOf{mgr}, MaxBytes: maxBytes, MaxStreams: cfg.S3MaxStreams, Logger: log,
			MayInvoke: func(ctx context.Context, function, sourceARN, sourceAccount string) error {
				ok, err := policies.MayInvoke(ctx, policy.ServiceInvocation{Service: policy.PrincipalS3,
					Function: function, SourceArn: sourceARN, SourceAccount: sourceAccount})
				if err == nil && !ok {
					err = fmt.Errorf("Unable to validate the following destination configurations: %s may not be invoked by s3.amazonaws.com for %s (add-permission)", function, sourceARN)
				}
				return err
			},
			Admit: func(ctx context.Context, function, trace, source string) (string, bool) {
				fn, err := mgr.Resolve(ctx, function, "") // $LATEST holds RecursiveLoop
				if err != nil {
					return trace, true // the invocation reports it
				}
				return loops.Admit(fn, trace, source)
			}})
		return err
	}); err != nil {
		return err
	}
	go objects.Run(background)

	var parameters *ssm.Service
	if err := open("SSM parameters", func(ctx context.Context) (err error) {
		parameters, err = ssm.Open(ctx, st, cfg.Region, cfg.AccountID)
		return err
	}); err != nil {
		return err
	}

	var codeSigning *frontend.CodeSigningConfigs
	if err := open("code signing configs", func(ctx context.Context) (err error) {
		codeSigning, err = frontend.OpenCodeSigningConfigs(ctx, st)
		return err
	}); err != nil {
		return err
	}
	// The deploy engine drives the node's own API as its clients do, signed
	// with the admin pair, over in-memory connections.
	inproc := newInProcess()
	defer inproc.Close()
	var stacks *deploy.Engine
	if err := open("stacks", func(ctx context.Context) (err error) {
		stacks, err = openStacks(ctx, cfg, st, creds, ln.Addr(), inproc, log)
		return err
	}); err != nil {
		return err
	}
	stackAPI := cloudformation.New(stacks, stacks.Clients.S3)

	fe := frontend.New(frontend.Config{
		Region:           cfg.Region,
		AccountID:        cfg.AccountID,
		ConcurrencyLimit: cfg.ConcurrencyLimit,
		Credentials:      (&credentials.Keys{Admin: creds, Issuer: sessions, Live: wk.Live}).Lookup,
		CodeURLKey:       codeURLKey,
		Logger:           log,
		Metrics:          promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
		URLListen:        urlLn.Addr().String(),
		APIBodies:        limits.bodies(limits.APIBodyBudgetMB, netMetrics.Listener("api")),
		URLBodies:        limits.bodies(limits.URLBodyBudgetMB, netMetrics.Listener("url")),
	}, frontend.Deps{Store: st, Manager: mgr, Logs: logStore, Async: dispatcher, Runtimes: rts, Cluster: members,
		Services: []*awsproto.Service{queues.API(), objects.API(), streams.API(), topics.API(), stackAPI.API(),
			sts.New(cfg.AccountID, sessions).API(), parameters.API()}, EventSources: mappings,
		Objects: objects, Events: buses, CodeSigningConfigs: codeSigning})

	endpointHandler := fe.Handler()
	api.Store(&endpointHandler)
	apiHandler := fe.Handler()
	if !cfg.NoConsole {
		sampler := console.NewSampler(registry, 0)
		go sampler.Run(background)
		con := console.New(console.Config{
			API: fe.Handler(), Region: cfg.Region, AccountID: cfg.AccountID, Credentials: adminKeyOf(creds),
			Changes: st, Sampler: sampler, Node: node, Logger: log,
		})
		// The console's streams end before the listener shuts down.
		go func() { <-ctx.Done(); con.Close() }()
		mux := http.NewServeMux()
		mux.Handle("/console/", con.Handler())
		mux.Handle("/console", con.Handler())
		mux.Handle("/", fe.Handler())
		apiHandler = mux
	}
	httpServer := limits.httpServer(apiHandler, log)
	inprocServer := limits.httpServer(fe.Handler(), log)
	go func() { _ = inprocServer.Serve(inproc) }()
	urlServer := limits.httpServer(fe.URLHandler(), log)
	servers := []*http.Server{httpServer, urlServer, inprocServer}
	served := make(chan error, 2)
	go func() {
		served <- httpServer.Serve(netlimit.NewListener(ln,
			netlimit.Limits{MaxConns: limits.MaxConns, MaxConnsPerAddr: limits.MaxConnsPerAddr},
			fe.ConnectionRefusal, netMetrics.Listener("api")))
	}()
	go func() {
		served <- urlServer.Serve(netlimit.NewListener(urlLn,
			netlimit.Limits{MaxConns: limits.URLMaxConns, MaxConnsPerAddr: limits.URLMaxConnsPerAddr},
			fe.URLConnectionRefusal, netMetrics.Listener("url")))
	}()
	if metricsLn != nil {
		servers = append(servers, serveMetrics(metricsLn, registry, limits, log))
		log.Info("metrics for Prometheus", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	go sweepCode(ctx, st, log)

	endpoint := "http://" + ln.Addr().String()
	log.Info("lamina ready", "endpoint", endpoint, "urls", "http://"+urlLn.Addr().String(), "region", cfg.Region, "account", cfg.AccountID,
		"data", cfg.DataDir, "node", node, "nodes", len(members.Members()), "replicas", replicas, "startup", time.Since(started).Round(time.Millisecond))
	if cfg.OnReady != nil {
		cfg.OnReady(Ready{Endpoint: endpoint, Credentials: creds, CredentialsCreated: created})
	}

	select {
	case err := <-served:
		return fmt.Errorf("api server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// The other nodes see this one go before it stops serving, and stop
	// placing invocations on it; those it runs for them end first.
	leave()
	if serving != nil {
		serving.Drain()
	}
	// Long polls answer now (empty), as they would when their wait ends.
	queues.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("requests still in flight at shutdown", "err", err)
		}
	}
	if serving != nil {
		if err := serving.Wait(shutdownCtx); err != nil {
			log.Warn("invocations of other nodes still running at shutdown", "err", err)
		}
	}
	return nil
}

// functionsOf tells S3 which functions exist, through the manager.
type functionsOf struct{ mgr *manager.Manager }

// Exists reports whether function (at qualifier) exists.
func (f functionsOf) Exists(ctx context.Context, function, qualifier string) error {
	_, err := f.mgr.Resolve(ctx, function, qualifier)
	return err
}

// adminKeyOf returns the lookup of the secret of the node's admin access
// key, the one key pair that signs in to the console.
func adminKeyOf(creds credentials.Pair) func(id string) (string, bool) {
	return func(id string) (string, bool) {
		if id == creds.AccessKeyID {
			return creds.SecretAccessKey, true
		}
		return "", false
	}
}

// liveInstances returns the live nodes' instances by node ID, as members
// sees them.
func liveInstances(members *cluster.Membership) func() map[string]string {
	return func() map[string]string {
		nodes := members.Members()
		live := make(map[string]string, len(nodes))
		for _, n := range nodes {
			live[n.ID] = n.Instance
		}
		return live
	}
}

// freshMember reports whether this node's heartbeats were stored recently
// enough for it to admit invocations within the concurrency shares it
// holds: within three heartbeat lifetimes (15 s). A heartbeat stream that
// lost its leader (a node killed) has another after NATS's election
// timeout (4 to 9 s, longer on a loaded machine), within it.
func freshMember(members *cluster.Membership) func() bool {
	return func() bool { return time.Since(members.LastStored()) < 3*members.TTL() }
}

// reclaimAfter is how long the concurrency shares of a node counted out
// stay its own: it is counted out a heartbeat lifetime after its last
// stored heartbeat and stops admitting three lifetimes after it; its
// shares are free four lifetimes (20 s) after it, a lifetime later.
func reclaimAfter(members *cluster.Membership) time.Duration { return 3 * members.TTL() }

// sweepCode deletes unreferenced code archives, and records of deleted
// functions, now and then until ctx ends.
func sweepCode(ctx context.Context, st *store.Store, log *slog.Logger) {
	t := time.NewTicker(codeSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := st.SweepOrphans(ctx); err != nil {
			log.Warn("sweeping records of deleted functions failed", "err", err)
		} else if n > 0 {
			log.Info("records of deleted functions swept", "count", n)
		}
		if n, err := st.SweepCode(ctx); err != nil {
			log.Warn("code sweep failed", "err", err)
		} else if n > 0 {
			log.Info("unreferenced code archives deleted", "count", n)
		}
	}
}

// sandboxProvider returns the sandbox provider cfg asks for, with its
// function network, and what closes that network.
func sandboxProvider(cfg Config, memoryBudgetMB int, log *slog.Logger) (sandbox.Provider, func(), error) {
	dir := filepath.Join(cfg.DataDir, "sandboxes")
	netCfg := cfg.FunctionNetwork
	if netCfg.Mode == "" {
		netCfg.Mode = sandbox.NetworkInternet
	}
	switch cfg.Sandbox {
	case "", "namespace":
		unavailable := func(err error) error {
			return fmt.Errorf("namespace sandbox unavailable (%w); run with --sandbox process to run functions without isolation", err)
		}
		if err := sandbox.CheckNamespaceUser(); err != nil {
			return nil, nil, unavailable(err)
		}
		var n *sandbox.Network
		closeNetwork := func() {}
		if netCfg.Mode != sandbox.NetworkNone {
			netCfg.Logger = log
			var err error
			if n, err = sandbox.NewNetwork(netCfg); err != nil {
				return nil, nil, fmt.Errorf("%w; run with --function-network none to give functions no network", err)
			}
			closeNetwork = func() { n.Close() }
		}
		p, err := sandbox.NewNamespaceProvider(sandbox.NamespaceOptions{
			StateDir: dir, TmpDir: cfg.TmpDir, MemoryBudgetMB: memoryBudgetMB, NodePids: cfg.NodePids, Network: n, Logger: log})
		if err != nil {
			closeNetwork()
			return nil, nil, unavailable(err)
		}
		return p, closeNetwork, nil
	case "process":
		scratch := dir
		if cfg.TmpDir != "" {
			scratch = cfg.TmpDir
		}
		log.Info("--sandbox process: functions use the host's network as it is; --function-network does not apply")
		return &sandbox.ProcessProvider{ScratchDir: scratch}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("--sandbox must be namespace or process, not %q", cfg.Sandbox)
}

// defaultMemoryBudgetMB is 80% of the machine's memory.
func defaultMemoryBudgetMB() int {
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return 4096
	}
	total := uint64(info.Totalram) * uint64(info.Unit)
	return int(total / (1 << 20) * 8 / 10)
}

// unwrapSyscall shortens "listen tcp 127.0.0.1:9000: bind: address already in
// use" to "address already in use".
func unwrapSyscall(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys interface{ Unwrap() error }
		if errors.As(op.Err, &sys) && sys.Unwrap() != nil {
			return sys.Unwrap()
		}
		return op.Err
	}
	return err
}
