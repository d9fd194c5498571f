package frontend

import (
	"net/http"

	"github.com/lamina-project/lamina/internal/cluster"
)

// Cluster tells which nodes form the platform: the node's membership,
// seen from the frontend.
type Cluster interface {
	// Members returns the live nodes, this one included.
	Members() []cluster.Node
	// Self is this node.
	Self() cluster.Node
	// Replicas is the replication of the store.
	Replicas() int
}

// nodesOutput is what GET /_lamina/nodes answers.
type nodesOutput struct {
	// Self is the name of the node that answers.
	Self string
	// Replicas is the replication of the store's buckets and streams.
	Replicas int
	Nodes    []cluster.Node
}

// listNodes answers GET /_lamina/nodes: the live nodes as the answering
// node sees them.
func (f *Frontend) listNodes(rq *request) error {
	return rq.json(http.StatusOK, nodesOutput{Self: f.cluster.Self().ID, Replicas: f.cluster.Replicas(), Nodes: f.cluster.Members()})
}
