package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// natsDirName is the embedded NATS server's directory in the data
// directory.
const natsDirName = "nats"

// maxMessage is the largest NATS message Lamina sends.
const maxMessage = 8 << 20

// embeddedNATS is the NATS server with JetStream that Lamina runs inside its
// own process: alone, or clustered with the embedded servers of other nodes.
type embeddedNATS struct {
	server *natsserver.Server
	conn   *nats.Conn
	// jetStream is the configuration JetStream runs with, for enabling it
	// again.
	jetStream natsserver.JetStreamConfig
	// clustered is set when the server takes routes from other nodes.
	clustered bool
}

// natsOptions is what the embedded NATS server is started with.
type natsOptions struct {
	storeDir string
	maxStore int64 // bytes of disk JetStream may use
	// listen, when set ("host:port"), opens NATS to other processes.
	listen string
	// node is this node's name; cluster, when its Listen is set, makes the
	// server take routes from the other nodes' servers.
	node    string
	cluster ClusterConfig
}

// startNATS starts NATS with JetStream storing under o.storeDir, using at
// most o.maxStore bytes of disk, and connects to it in-process. It opens a
// TCP port for clients when o.listen is set, for tools; a clustered server
// also needs one (routing waits for it), which is then opened on a random
// loopback port that takes only a key of this process, unless o.listen says
// otherwise. The server's reports of write errors go to health.
func startNATS(o natsOptions, health *store.Health, log *slog.Logger) (*embeddedNATS, error) {
	opts := &natsserver.Options{
		ServerName:        "lamina",
		JetStream:         true,
		StoreDir:          o.storeDir,
		JetStreamMaxStore: o.maxStore,
		DontListen:        o.listen == "",
		NoSigs:            true,
		// Room for an invocation record: a 1 MB event and a 6 MB response,
		// with headers.
		MaxPayload: maxMessage,
	}
	if o.listen != "" {
		var err error
		if opts.Host, opts.Port, err = splitHostPort("--nats-listen", o.listen); err != nil {
			return nil, err
		}
	}
	clustered := o.cluster.embedded()
	var connOpts []nats.Option
	if clustered {
		opts.ServerName = o.node
		if err := o.cluster.routeOptions(opts); err != nil {
			return nil, err
		}
		if o.listen == "" {
			opts.DontListen = false
			opts.Host, opts.Port = "127.0.0.1", natsserver.RANDOM_PORT
			user, err := nkeys.CreateUser()
			if err != nil {
				return nil, fmt.Errorf("nats: %w", err)
			}
			pub, err := user.PublicKey()
			if err != nil {
				return nil, fmt.Errorf("nats: %w", err)
			}
			opts.Nkeys = []*natsserver.NkeyUser{{Nkey: pub}}
			connOpts = append(connOpts, nats.Nkey(pub, user.Sign))
		}
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("part", "nats"), health}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: not ready after 30s (is %s usable? are the ports free?)", opts.StoreDir)
	}
	connOpts = append(connOpts, nats.InProcessServer(ns), nats.Name("lamina"), nats.MaxReconnects(-1))
	nc, err := nats.Connect("", connOpts...)
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: connect in-process: %w", err)
	}
	jsCfg := ns.JetStreamConfig()
	if jsCfg == nil {
		nc.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("nats: JetStream did not start (is %s usable?)", opts.StoreDir)
	}
	return &embeddedNATS{server: ns, conn: nc, jetStream: *jsCfg, clustered: clustered}, nil
}

// splitHostPort parses the "host:port" value of flag.
func splitHostPort(flag, value string) (string, int, error) {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", flag, value, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", flag, value)
	}
	return host, n, nil
}

// restartJetStream reopens JetStream's streams from disk, which clears the
// write errors a stream keeps (the NATS server refuses writes to a stream
// after one failed, until it is reopened): it shuts JetStream down, if it
// runs, and enables it again with the same configuration. Connections stay
// up; consumers' clients must subscribe again.
//
// A clustered server's JetStream is only enabled again if it disabled
// itself (the server does when its disk is full): while it runs, its
// streams' replicas catch up from the other nodes' on their own, and
// shutting it down would take this node out of every stream's group —
// what a failure that other nodes see as a leader change must not do.
func (e *embeddedNATS) restartJetStream() error {
	if !e.mustRestart() {
		return nil
	}
	if e.server.JetStreamEnabled() {
		if err := e.server.ShutdownJetStream(); err != nil {
			return fmt.Errorf("nats: shut JetStream down: %w", err)
		}
	}
	cfg := e.jetStream
	// EnableJetStream puts its own directory under the one it is given.
	cfg.StoreDir = filepath.Dir(cfg.StoreDir)
	if err := e.server.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("nats: enable JetStream: %w", err)
	}
	return nil
}

// mustRestart reports whether restartJetStream would restart or enable
// JetStream: always for a single server, and for a clustered one only if
// its JetStream disabled itself.
func (e *embeddedNATS) mustRestart() bool {
	return !e.clustered || !e.server.JetStreamEnabled()
}

// stop closes the connection and shuts the server down, flushing JetStream
// to disk.
func (e *embeddedNATS) stop() {
	_ = e.conn.Drain()
	e.conn.Close()
	e.server.Shutdown()
	e.server.WaitForShutdown()
}

// natsLogger forwards the NATS server's log to slog: notices at debug level,
// warnings and errors as such; and tells health of the storage failures the
// server logs.
type natsLogger struct {
	log    *slog.Logger
	health *store.Health
}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.report(slog.LevelWarn, format, v) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.report(slog.LevelError, format, v) }
func (l natsLogger) Errorf(format string, v ...any)  { l.report(slog.LevelError, format, v) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}

func (l natsLogger) report(level slog.Level, format string, v []any) {
	line := fmt.Sprintf(format, v...)
	l.log.Log(context.Background(), level, line)
	l.health.NoteServerLog(line)
}

// connectNATS gives the node its NATS connection: to the embedded server,
// which it starts (alone or clustered), or to the external NATS cluster.
// It also sizes the store. embedded is nil with an external cluster.
func connectNATS(ctx context.Context, cfg Config, node string, health *store.Health, log *slog.Logger) (conn *nats.Conn, embedded *embeddedNATS, limits storeLimits, err error) {
	if cfg.Cluster.external() {
		nc, err := connectExternal(cfg.Cluster, node)
		if err != nil {
			return nil, nil, limits, err
		}
		if limits, err = externalStoreLimits(ctx, nc, cfg, log); err != nil {
			nc.Close()
			return nil, nil, limits, err
		}
		log.Info("store on an external NATS cluster", "url", redactURLs(cfg.Cluster.NATSURL), "server", nc.ConnectedServerName(), "cluster", nc.ConnectedClusterName())
		return nc, nil, limits, nil
	}
	natsDir := filepath.Join(cfg.DataDir, natsDirName)
	if limits, err = sizeStore(cfg.DataDir, natsDir, cfg.StoreMaxMB); err != nil {
		return nil, nil, limits, err
	}
	e, err := startNATS(natsOptions{storeDir: natsDir, maxStore: limits.Max, listen: cfg.NATSListen, node: node, cluster: cfg.Cluster}, health, log)
	if err != nil {
		return nil, nil, limits, err
	}
	if e.clustered {
		log.Info("embedded NATS server clustered", "node", node, "cluster_listen", cfg.Cluster.Listen, "peers", cfg.Cluster.Peers)
	}
	return e.conn, e, limits, nil
}

// externalStoreLimits sizes a store on an external NATS cluster: by
// --store-max, else by the storage limit of the NATS account, else as if
// the store were on this node's data disk.
func externalStoreLimits(ctx context.Context, nc *nats.Conn, cfg Config, log *slog.Logger) (storeLimits, error) {
	if cfg.StoreMaxMB > 0 {
		return sizeStore(cfg.DataDir, "", cfg.StoreMaxMB)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return storeLimits{}, err
	}
	var info *jetstream.AccountInfo
	if err := untilFormed(ctx, log, "JetStream", func(ctx context.Context) (err error) {
		info, err = js.AccountInfo(ctx)
		return err
	}); err != nil {
		return storeLimits{}, fmt.Errorf("JetStream on the NATS server: %w", err)
	}
	if info.Limits.MaxStore > 0 {
		return storeShares(info.Limits.MaxStore), nil
	}
	log.Info("the NATS account has no storage limit: the store is sized as if it were on this node's data disk; --store-max sets its size")
	return sizeStore(cfg.DataDir, filepath.Join(cfg.DataDir, natsDirName), 0)
}
