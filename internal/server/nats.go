package server

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

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
}

// startNATS starts NATS with JetStream storing under dataDir/nats and
// connects to it in-process. It opens a TCP port only when listen is set
// ("host:port"), for tools and other nodes.
func startNATS(dataDir, listen string, log *slog.Logger) (*embeddedNATS, error) {
	opts := &natsserver.Options{
		ServerName: "lamina",
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		DontListen: listen == "",
		NoSigs:     true,
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
	ns.SetLoggerV2(natsLogger{log.With("part", "nats")}, false, false, false)
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
	return &embeddedNATS{server: ns, conn: nc}, nil
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
// warnings and errors as such.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}
