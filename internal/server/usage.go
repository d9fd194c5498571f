package server

import (
	"context"
	"sync"

	"github.com/lamina-project/lamina/internal/cluster"
	"github.com/lamina-project/lamina/internal/sandbox"
)

// usageProvider is a sandbox provider that counts the sandboxes it has
// live and the function memory they were made for, which the node's
// heartbeats report.
type usageProvider struct {
	sandbox.Provider

	mu    sync.Mutex
	usage cluster.Usage
}

// Create creates a sandbox with the provider it wraps and counts it until
// it is destroyed.
func (p *usageProvider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	sb, err := p.Provider.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	p.add(spec.MemoryMB, 1)
	return &countedSandbox{Sandbox: sb, release: sync.OnceFunc(func() { p.add(-spec.MemoryMB, -1) })}, nil
}

func (p *usageProvider) add(memoryMB, sandboxes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.usage.MemoryInUseMB += memoryMB
	p.usage.Environments += sandboxes
}

// Usage returns the memory and number of the sandboxes live now.
func (p *usageProvider) Usage() cluster.Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.usage
}

// countedSandbox is a sandbox counted by a usageProvider until it is
// destroyed.
type countedSandbox struct {
	sandbox.Sandbox
	release func()
}

// Destroy destroys the sandbox and stops counting it.
func (s *countedSandbox) Destroy() error {
	err := s.Sandbox.Destroy()
	s.release()
	return err
}
