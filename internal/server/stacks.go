package server

import (
	"context"
	"log/slog"
	"net"

	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/deploy"
	"github.com/lamina-project/lamina/internal/store"
)

// stacksBucket holds the deployed stacks; its name is part of the on-disk
// format.
const stacksBucket = "lamina-stacks"

// openStacks opens the stacks and the engine that deploys them, whose
// clients reach the API at apiAddr through the in-process listener.
func openStacks(ctx context.Context, cfg Config, st *store.Store, admin credentials.Pair, apiAddr net.Addr, inproc *inProcess, log *slog.Logger) (*deploy.Engine, error) {
	table, err := store.OpenTable[deploy.Stack](ctx, st, stacksBucket, "stack")
	if err != nil {
		return nil, err
	}
	clients := deploy.NewClients("http://"+reachable(apiAddr), cfg.Region,
		awscreds.NewStaticCredentialsProvider(admin.AccessKeyID, admin.SecretAccessKey, ""), inproc.Dial)
	return &deploy.Engine{Region: cfg.Region, AccountID: cfg.AccountID, Stacks: table, Clients: clients,
		Types: deploy.Types(clients, cfg.Region, cfg.AccountID), Parameter: clients.Parameter, Logger: log.With("part", "deploy")}, nil
}

// reachable is the address clients use to reach a listener: an unspecified
// host (0.0.0.0, ::) is reached on loopback.
func reachable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
