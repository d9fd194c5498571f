package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterConfig says how a node joins others: through the embedded NATS
// server's routes (Listen and Peers), or by using an external NATS cluster
// (NATSURL) instead of an embedded server. The zero value runs a single
// node.
type ClusterConfig struct {
	// NodeName names this node among the others (its NATS server name, its
	// heartbeat's key); empty means the name kept in the data directory,
	// made up on first start.
	NodeName string
	// Listen is the "host:port" where the embedded NATS server takes routes
	// from the other nodes' servers; setting it clusters the server.
	Listen string
	// Peers are the route addresses ("host:port") of the nodes; this node's
	// own may be among them, so every node can be given the same list.
	Peers []string
	// Name is the NATS cluster's name; empty means "lamina".
	Name string
	// Secret, when set, is the password of routes: every node must have
	// the same one.
	Secret string
	// NATSURL, when set, is the external NATS server (or servers, comma
	// separated) the node keeps its state on, instead of an embedded one.
	NATSURL string
	// NATSCreds is a credentials file (JWT and NKey seed) for NATSURL;
	// NATSUser and NATSPassword, or NATSToken, authenticate otherwise.
	NATSCreds              string
	NATSUser, NATSPassword string
	NATSToken              string
	// Replicas is the replication of every bucket and stream; zero
	// chooses: three for three nodes or more (two for two) in an embedded
	// cluster, three on an external NATS cluster, one on a single server.
	Replicas int
}

// defaultClusterName is the NATS cluster's name unless one is given.
const defaultClusterName = "lamina"

// routeUser is the user name of routes when they have a secret.
const routeUser = "lamina-route"

// maxReplicas is the most JetStream replicates a stream.
const maxReplicas = 5

func (c ClusterConfig) embedded() bool { return c.Listen != "" }
func (c ClusterConfig) external() bool { return c.NATSURL != "" }

// clustered reports whether the node shares its state with others.
func (c ClusterConfig) clustered() bool { return c.embedded() || c.external() }

// check returns an error naming the flags that do not go together.
func (c ClusterConfig) check(natsListen string) error {
	if c.NodeName != "" {
		if err := cluster.CheckNodeID(c.NodeName); err != nil {
			return fmt.Errorf("--node-name: %w", err)
		}
	}
	switch {
	case c.embedded() && c.external():
		return errors.New("--cluster-listen clusters the embedded NATS server; --nats-url uses an external one instead: give one of them")
	case c.embedded() && len(c.Peers) == 0:
		return errors.New("--cluster-listen needs --cluster-peers: the route addresses of the nodes (the same list on every node)")
	case !c.embedded() && len(c.Peers) > 0:
		return errors.New("--cluster-peers needs --cluster-listen: this node's own route address")
	case !c.embedded() && c.Secret != "":
		return errors.New("LAMINA_CLUSTER_SECRET authenticates the embedded NATS server's routes: it needs --cluster-listen")
	case c.external() && natsListen != "":
		return errors.New("--nats-listen opens the embedded NATS server; with --nats-url there is none")
	case !c.external() && (c.NATSCreds != "" || c.NATSUser != "" || c.NATSPassword != "" || c.NATSToken != ""):
		return errors.New("NATS credentials (--nats-creds, --nats-user, LAMINA_NATS_PASSWORD, LAMINA_NATS_TOKEN) need --nats-url")
	case c.Replicas < 0 || c.Replicas > maxReplicas:
		return fmt.Errorf("--replicas must be 1 to %d", maxReplicas)
	case !c.clustered() && c.Replicas > 1:
		return errors.New("--replicas above 1 needs a cluster (--cluster-listen or --nats-url)")
	}
	if c.embedded() {
		if _, _, err := splitHostPort("--cluster-listen", c.Listen); err != nil {
			return err
		}
		for _, p := range c.Peers {
			if _, _, err := splitHostPort("--cluster-peers", p); err != nil {
				return err
			}
		}
	}
	return nil
}

// routeOptions sets the cluster block of the embedded server's options:
// its route listener, its routes to the peers and their password.
func (c ClusterConfig) routeOptions(opts *natsserver.Options) error {
	host, port, err := splitHostPort("--cluster-listen", c.Listen)
	if err != nil {
		return err
	}
	opts.Cluster.Name = c.Name
	if opts.Cluster.Name == "" {
		opts.Cluster.Name = defaultClusterName
	}
	opts.Cluster.Host, opts.Cluster.Port = host, port
	if c.Secret != "" {
		opts.Cluster.Username, opts.Cluster.Password = routeUser, c.Secret
	}
	for _, p := range c.Peers {
		u := &url.URL{Scheme: "nats-route", Host: p}
		if c.Secret != "" {
			u.User = url.UserPassword(routeUser, c.Secret)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// replicas is the replication the node asks for: Replicas when given,
// else what the cluster's size suggests. nc is the node's connection.
func (c ClusterConfig) replicas(nc *nats.Conn) int {
	switch {
	case c.Replicas > 0:
		return c.Replicas
	case c.embedded():
		return min(3, c.nodes())
	case c.external() && nc.ConnectedClusterName() != "":
		return 3
	}
	return 1
}

// nodes counts the nodes Peers names, this one once whether or not it is
// listed.
func (c ClusterConfig) nodes() int {
	seen := map[string]bool{}
	n := 1
	for _, p := range c.Peers {
		if seen[p] || c.isSelf(p) {
			continue
		}
		seen[p] = true
		n++
	}
	return n
}

// isSelf reports whether the route address peer is this node's own: the
// port of Listen on an address of Listen's host (any of the machine's when
// Listen's host is unspecified).
func (c ClusterConfig) isSelf(peer string) bool {
	host, port, err := splitHostPort("", peer)
	lhost, lport, lerr := splitHostPort("", c.Listen)
	if err != nil || lerr != nil || port != lport {
		return false
	}
	if host == lhost {
		return true
	}
	peerIPs := lookupIPs(host)
	var own []net.IP
	if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok {
				own = append(own, ipnet.IP)
			}
		}
	} else {
		own = lookupIPs(lhost)
	}
	for _, p := range peerIPs {
		for _, o := range own {
			if p.Equal(o) {
				return true
			}
		}
	}
	return false
}

// lookupIPs returns the addresses of host, a name or an address; none if
// it does not resolve within a few seconds.
func lookupIPs(host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addrs, _ := net.DefaultResolver.LookupIPAddr(ctx, host)
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips
}

// connectExternal connects to the external NATS cluster of c as node.
func connectExternal(c ClusterConfig, node string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("lamina " + node), nats.MaxReconnects(-1)}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.NATSToken != "" {
		opts = append(opts, nats.Token(c.NATSToken))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", redactURLs(c.NATSURL), err)
	}
	if nc.MaxPayload() < maxMessage {
		size := nc.MaxPayload()
		nc.Close()
		return nil, fmt.Errorf("the NATS server at %s takes messages of at most %d bytes; Lamina needs %d MB: set max_payload: %dMB in its configuration",
			redactURLs(c.NATSURL), size, maxMessage>>20, maxMessage>>20)
	}
	return nc, nil
}

// redactURLs hides the passwords of a comma-separated list of URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// nodeNameFile keeps a node's name in its data directory.
const nodeNameFile = "node-name"

// nodeName returns the node's name: flag when set, else the one kept in
// dataDir, made up (host name and a random suffix) on first start. A data
// directory keeps the name it was first given: a clustered NATS server is
// known to the others by its name.
func nodeName(dataDir, flag string) (string, error) {
	path := filepath.Join(dataDir, nodeNameFile)
	data, err := os.ReadFile(path)
	kept := strings.TrimSpace(string(data))
	switch {
	case err == nil && cluster.CheckNodeID(kept) == nil:
		if flag != "" && flag != kept {
			return "", fmt.Errorf("data directory %s belongs to node %q: start it with --node-name %s, or give --node-name %s another data directory", dataDir, kept, kept, flag)
		}
		return kept, nil
	case err == nil:
		return "", fmt.Errorf("%s holds no valid node name; remove it to make up a new one", path)
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("data directory %s is not usable: %w", dataDir, err)
	}
	name := flag
	if name == "" {
		name = madeUpNodeName()
	}
	if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("data directory %s is not usable: %w", dataDir, err)
	}
	return name, nil
}

// madeUpNodeName is the host's name, reduced to what a node name may hold,
// and a random suffix, so that nodes on one machine differ.
func madeUpNodeName() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	host = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	if host == "" {
		host = "node"
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	return host + "-" + hex.EncodeToString(suffix)
}

// checkStoreMode refuses a JetStream store (under natsDir) made in the
// other mode. A single node's streams are not a cluster's: a clustered
// server drops the streams it finds that its cluster does not know (as
// orphans), and a single server would take a cluster node's replicas,
// perhaps behind the others, for the whole truth.
func checkStoreMode(natsDir string, clustered bool) error {
	root := filepath.Join(natsDir, natsserver.JetStreamStoreDir)
	meta := filepath.Join(root, "$SYS", "_js_", "_meta_")
	_, err := os.Stat(meta)
	wasClustered := err == nil
	switch {
	case clustered && !wasClustered && holdsStreams(root):
		return fmt.Errorf("the data directory's store (%s) is a single node's: a cluster node starts on a new data directory "+
			"(the NATS cluster would drop the streams it does not know); move it away, or start without --cluster-listen", natsDir)
	case !clustered && wasClustered:
		return fmt.Errorf("the data directory's store (%s) belongs to a cluster node: start it with its --cluster-listen and --cluster-peers", natsDir)
	}
	return nil
}

// holdsStreams reports whether any account under a JetStream store root
// has streams.
func holdsStreams(root string) bool {
	accounts, _ := os.ReadDir(root)
	for _, a := range accounts {
		streams, _ := os.ReadDir(filepath.Join(root, a.Name(), "streams"))
		if len(streams) > 0 {
			return true
		}
	}
	return false
}

// Waiting for a cluster to form. Each attempt of a step is bounded, first
// by formAttemptTimeout, twice as long after each failure up to
// formAttemptMax (a large store takes a while to load). Between attempts a
// node waits formRetryWait and a random part of formRetryJitter: nodes
// started together then stop asking JetStream to create the same streams at
// the same time, which loses its answers (NATS server 2.15: all three
// requests of nodes creating a stream at once may time out, although the
// stream was created). The wait is logged every formLogEvery.
const (
	formAttemptTimeout = 2 * time.Second
	formAttemptMax     = time.Minute
	formRetryWait      = 100 * time.Millisecond
	formRetryJitter    = time.Second
	formLogEvery       = 5 * time.Second
	// formProbeTimeout bounds the first request, which waits for JetStream.
	formProbeTimeout = time.Second
)

// untilFormed runs step (named what) until it succeeds, while its errors
// say that JetStream is not ready yet — a cluster whose nodes are still
// starting has no leader, or fewer servers than the replicas asked for — or
// until ctx ends. Any other error is returned at once.
func untilFormed(ctx context.Context, log *slog.Logger, what string, step func(ctx context.Context) error) error {
	var logged time.Time
	timeout := formAttemptTimeout
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, timeout)
		err := step(attemptCtx)
		cancel()
		if err == nil || ctx.Err() != nil || !clusterForming(err) {
			return err
		}
		if time.Since(logged) >= formLogEvery {
			log.Info("waiting for the cluster (its nodes may still be starting; fewer JetStream servers than the replicas also keep it waiting)",
				"step", what, "err", err)
			logged = time.Now()
		}
		timeout = min(2*timeout, formAttemptMax)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(formRetryWait + mathrand.N(formRetryJitter)):
		}
	}
}

// JetStream error codes that mean the cluster cannot place or serve a
// stream yet, or that another node is creating it at the same time (it is
// then in use, or not found yet).
const (
	codeNoSuitablePeers    = 10005
	codeClusterUnavailable = 10008
	codeClusterCannotServe = 10009
	codeNotEnoughServers   = 10023
	codeStreamNameInUse    = 10058
	codeStreamNotFound     = 10059
	codeStreamOffline      = 10118
)

// clusterForming reports whether err says that JetStream is not ready yet.
func clusterForming(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeNoSuitablePeers, codeClusterUnavailable, codeClusterCannotServe, codeNotEnoughServers,
			codeStreamNameInUse, codeStreamNotFound, codeStreamOffline, jetstream.JSErrCodeJetStreamNotEnabled:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// adminCredentialsKey keeps a cluster's admin pair in the store.
const adminCredentialsKey = "credentials.admin"

// clusterCredentials returns the admin pair every node of a cluster
// accepts: the one in the store, put there by the first node that started
// (the pair LAMINA_ACCESS_KEY_ID and LAMINA_SECRET_ACCESS_KEY set on it, the
// one in its data directory, or a new one). It is kept in this node's data
// directory too, for the CLI. A node whose environment sets another pair
// does not start. created reports that this node generated the pair.
func clusterCredentials(ctx context.Context, st *store.Store, dataDir string) (p credentials.Pair, created bool, err error) {
	proposal, fromEnv, err := credentials.FromEnv()
	if err != nil {
		return p, false, err
	}
	if !fromEnv {
		if proposal, err = credentials.Load(dataDir); errors.Is(err, os.ErrNotExist) {
			proposal, created = credentials.Generate(), true
		} else if err != nil {
			return p, false, err
		}
	}
	data, err := json.Marshal(proposal)
	if err != nil {
		return p, false, err
	}
	value, stored, err := st.Shared(ctx, adminCredentialsKey, data)
	if err != nil {
		return p, false, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(value, &p); err != nil || p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return p, false, errors.New("credentials: the cluster's admin pair in the store is damaged")
	}
	if fromEnv && p != proposal {
		return p, false, fmt.Errorf("%s and %s set another admin pair than the cluster's (key ID %s): set the cluster's, or neither",
			credentials.EnvAccessKeyID, credentials.EnvSecretAccessKey, p.AccessKeyID)
	}
	if err := credentials.Keep(dataDir, p); err != nil {
		return p, false, fmt.Errorf("credentials: %w", err)
	}
	return p, created && stored, nil
}

// storeReplicas is the replication the node opens the store with: want,
// unless the store already has more (a node never lowers it; it may raise
// it, JetStream scaling the streams up).
func storeReplicas(ctx context.Context, js jetstream.JetStream, want int, log *slog.Logger) (int, error) {
	have, err := store.ExistingReplicas(ctx, js)
	if err != nil {
		return 0, err
	}
	if have > want {
		log.Info("the store keeps its replication", "replicas", have, "asked", want)
		return have, nil
	}
	return want, nil
}

// endpoint is the base URL at which other machines reach the listener at
// addr: a listener on every address is shown by the host's name.
func endpoint(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
