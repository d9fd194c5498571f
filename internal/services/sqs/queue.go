package sqs

import (
	"context"
	"time"
)

// Queue is one queue, for Lamina's parts that use queues without HTTP:
// event source mappings' pollers (Receive, Delete, ChangeVisibility) and
// destinations (Send). Its methods behave as the API operations of the same
// names — the same validation, errors (*awsproto.Error with SQS's codes),
// visibility, FIFO ordering, deduplication and dead-letter redrive — and are
// safe for concurrent use on any node. A Queue names the queue as it was
// when it was looked up: once the queue is deleted (even if one of the same
// name is made again), its methods fail with QueueDoesNotExist.
type Queue struct {
	s        *Service
	name, id string
	fifo     bool
}

// ReceiveOptions are a Receive's parameters.
type ReceiveOptions struct {
	// MaxMessages is how many messages to return at most, 1 to 10; zero
	// means 1.
	MaxMessages int
	// Visibility is how long the messages stay invisible, at most 12
	// hours; zero means the queue's VisibilityTimeout.
	Visibility time.Duration
	// Wait is how long to wait for a message when there is none (long
	// polling), at most 20 seconds.
	Wait time.Duration
}

// QueueByARN returns the queue an ARN of this account and region names
// (arn:aws:sqs:<region>:<account>:<name>), or QueueDoesNotExist.
func (s *Service) QueueByARN(ctx context.Context, arn string) (*Queue, error) {
	name, ok := s.nameFromARN(arn)
	if !ok {
		return nil, ErrQueueDoesNotExist()
	}
	return s.queueHandle(ctx, name)
}

// QueueByURL returns the queue a queue URL names (…/<account>/<name>, on
// any host), or QueueDoesNotExist.
func (s *Service) QueueByURL(ctx context.Context, queueURL string) (*Queue, error) {
	name, ok := s.nameFromURL(queueURL)
	if !ok {
		return nil, ErrQueueDoesNotExist()
	}
	return s.queueHandle(ctx, name)
}

func (s *Service) queueHandle(ctx context.Context, name string) (*Queue, error) {
	q, err := s.queueByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return &Queue{s: s, name: q.Name, id: q.ID, fifo: q.FIFO}, nil
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// ARN is the queue's ARN.
func (q *Queue) ARN() string { return q.s.queueARN(q.name) }

// FIFO reports whether it is a FIFO queue.
func (q *Queue) FIFO() bool { return q.fifo }

// record returns the queue's current record.
func (q *Queue) record(ctx context.Context) (*queueRecord, error) {
	r, err := q.s.queueByName(ctx, q.name)
	if err != nil {
		return nil, err
	}
	if r.ID != q.id {
		return nil, ErrQueueDoesNotExist()
	}
	return r, nil
}

// VisibilityTimeout is the queue's VisibilityTimeout now.
func (q *Queue) VisibilityTimeout(ctx context.Context) (time.Duration, error) {
	r, err := q.record(ctx)
	if err != nil {
		return 0, err
	}
	return time.Duration(r.Visibility) * time.Second, nil
}

// Send sends a message, as SendMessage does; the SenderId its receivers see
// is the account.
func (q *Queue) Send(ctx context.Context, m *OutgoingMessage) (*SendResult, error) {
	r, err := q.record(ctx)
	if err != nil {
		return nil, err
	}
	results, errs := q.s.send(ctx, r, "", []*OutgoingMessage{m})
	return results[0], errs[0]
}

// Receive receives messages, as ReceiveMessage does. Every system
// attribute is in each Message's Attributes, and every message attribute
// in its MessageAttributes.
func (q *Queue) Receive(ctx context.Context, o ReceiveOptions) ([]*Message, error) {
	r, err := q.record(ctx)
	if err != nil {
		return nil, err
	}
	n := max(o.MaxMessages, 1)
	if n > maxReceiveMessage {
		return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n)
	}
	visibility := r.Visibility
	if o.Visibility > 0 {
		visibility = int(o.Visibility.Round(time.Second) / time.Second)
	}
	if visibility > maxVisibility || o.Wait > maxWait*time.Second {
		return nil, errInvalidParameter("Visibility must be at most 12 hours and Wait at most 20 seconds.")
	}
	return q.s.receive(ctx, r, receiveOptions{max: n, visibility: visibility, wait: o.Wait})
}

// Delete deletes the message a receipt handle names, as DeleteMessage
// does.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	r, err := q.record(ctx)
	if err != nil {
		return err
	}
	return q.s.deleteMessage(ctx, r, receiptHandle)
}

// ChangeVisibility makes the message a receipt handle names invisible for
// timeout from now, as ChangeMessageVisibility does.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error {
	r, err := q.record(ctx)
	if err != nil {
		return err
	}
	return q.s.changeVisibility(ctx, r, receiptHandle, int(timeout.Round(time.Second)/time.Second))
}
