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
)

// maxMessage is the largest NATS message Lamina sends.
const maxMessage = 8 << 20

// embeddedNATS is the NATS server with JetStream that a single-node Lamina
// runs inside its own process.
type embeddedNATS struct {
	server *natsserver.Server
	conn   *nats.Conn
	// jetStream is the configuration JetStream runs with, for enabling it
	// again.
	jetStream natsserver.JetStreamConfig
}

// startNATS starts NATS with JetStream storing under storeDir, using at most
// maxStore bytes of disk, and connects to it in-process. It opens a TCP port
// only when listen is set ("host:port"), for tools and other nodes. The
// server's reports of write errors go to health.
func startNATS(storeDir, listen string, maxStore int64, health *store.Health, log *slog.Logger) (*embeddedNATS, error) {
	opts := &natsserver.Options{
		ServerName:        "lamina",
		JetStream:         true,
		StoreDir:          storeDir,
		JetStreamMaxStore: maxStore,
		DontListen:        listen == "",
		NoSigs:            true,
		// Room for an invocation record: a 1 MB event and a 6 MB response,
		// with headers.
		MaxPayload: maxMessage,
	}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("--nats-listen %q: %w", listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("--nats-listen %q: bad port", listen)
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
		return nil, fmt.Errorf("nats: not ready after 30s (is %s usable?)", opts.StoreDir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("lamina"), nats.MaxReconnects(-1))
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
	return &embeddedNATS{server: ns, conn: nc, jetStream: *jsCfg}, nil
}

// restartJetStream shuts JetStream down, if it runs, and enables it again
// with the same configuration: every stream is reopened from disk, which
// clears the write errors a stream keeps (the NATS server refuses writes to
// a stream after one failed, until it is reopened). Connections stay up;
// consumers' clients must subscribe again.
func (e *embeddedNATS) restartJetStream() error {
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
