package s3

import "context"

// sweepBlobs deletes the bodies that no object and no part holds and that
// are older than sweepGrace: what a write that failed half-way, or a
// deletion that could not purge them, left behind. It returns how many it
// deleted.
func (s *Service) sweepBlobs(ctx context.Context) (int, error) {
	ids, err := s.blobs.ids(ctx)
	if err != nil {
		return 0, err
	}
	for _, o := range s.objects.List("", nil) {
		for _, b := range o.Blobs {
			delete(ids, b.ID)
		}
	}
	for _, p := range s.parts.List("", nil) {
		delete(ids, p.Blob.ID)
	}
	deleted := 0
	for id := range ids {
		if blobAge(id) < sweepGrace {
			continue
		}
		s.blobs.remove(id)
		deleted++
	}
	return deleted, nil
}
