package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/lamina-project/lamina"
)

// layerCounter is the record that numbers a layer's versions: numbers are
// never reused, even after a version is deleted.
type layerCounter struct {
	LastVersion int
}

func layerVersionKey(layer string, n int) string { return layer + "." + strconv.Itoa(n) }

// PublishLayerVersion stores lv as the next version of its layer and
// returns the number it got.
func (s *Store) PublishLayerVersion(ctx context.Context, lv *lamina.LayerVersion) (int, error) {
	counter, err := s.layerCounters.update(ctx, lv.LayerName, func(c *layerCounter) error {
		c.LastVersion++
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		if err = s.layerCounters.create(ctx, lv.LayerName, &layerCounter{LastVersion: 1}); errors.Is(err, ErrExists) {
			return s.PublishLayerVersion(ctx, lv) // another node created it first
		}
		counter = &layerCounter{LastVersion: 1}
	}
	if err != nil {
		return 0, err
	}
	lv.Version = counter.LastVersion
	return lv.Version, s.layers.create(ctx, layerVersionKey(lv.LayerName, lv.Version), lv)
}

// GetLayerVersion returns version n of layer, deleted or not, or
// ErrNotFound. The caller must not modify it.
func (s *Store) GetLayerVersion(ctx context.Context, layer string, n int) (*lamina.LayerVersion, error) {
	return s.layers.get(ctx, layerVersionKey(layer, n))
}

// UpdateLayerVersion applies change to a layer version atomically.
func (s *Store) UpdateLayerVersion(ctx context.Context, layer string, n int, change func(*lamina.LayerVersion) error) (*lamina.LayerVersion, error) {
	return s.layers.update(ctx, layerVersionKey(layer, n), change)
}

// ListLayerVersions returns the versions of layer that are not deleted,
// newest first.
func (s *Store) ListLayerVersions(ctx context.Context, layer string) []*lamina.LayerVersion {
	var out []*lamina.LayerVersion
	for _, lv := range s.layers.list(layer+".", nil) {
		if !lv.Deleted {
			out = append(out, lv)
		}
	}
	sortLayerVersions(out)
	return out
}

// ListLayers returns the names of layers that have versions not deleted,
// sorted.
func (s *Store) ListLayers(ctx context.Context) []string {
	var names []string
	seen := map[string]bool{}
	for _, key := range s.layers.keys("") {
		name, _, _ := strings.Cut(key, ".")
		if lv, err := s.layers.get(ctx, key); err == nil && !lv.Deleted && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// allLayerVersions returns every layer version, deleted ones included.
func (s *Store) allLayerVersions() []*lamina.LayerVersion { return s.layers.list("", nil) }

// sortLayerVersions orders versions newest first.
func sortLayerVersions(lvs []*lamina.LayerVersion) {
	slices.SortFunc(lvs, func(a, b *lamina.LayerVersion) int { return cmp.Compare(b.Version, a.Version) })
}
