// Package scheduler fires EventBridge schedule rules: each tick of an
// enabled rule sends its targets (functions, invoked asynchronously; queues;
// topics; buses) the Scheduled Event, or what the target's Input, InputPath
// or InputTransformer makes of it. As on AWS, a function is invoked only if
// its resource-based policy lets events.amazonaws.com invoke it for the
// rule (PutTargets does not check; a tick without the permission invokes
// nothing and is logged).
//
// One node of a deployment owns the ticks at a time, through a lease in the
// store; each tick is recorded with a compare-and-set, and its events carry
// an ID derived from the rule, target and tick, which the async queue
// deduplicates — so a tick fires exactly once across the deployment even
// when ownership moves. Ticks missed while no node ran are skipped and
// logged, never fired in a burst.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/eventbus"
	"github.com/lamina-project/lamina/internal/eventpattern"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/schedule"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// Timing of the scheduler loop.
const (
	interval = 200 * time.Millisecond
	leaseTTL = 10 * time.Second
	// lateness is how late a tick may still fire; an older one was missed.
	lateness = 5 * time.Second
)

// Config is what a scheduler needs.
type Config struct {
	Region    string
	AccountID string
	Store     *store.Store
	// Deliver sends a tick's event to a target (a targets.Router's
	// Deliver, which asks functions' policies).
	Deliver func(ctx context.Context, arn string, m *targets.Message) error
	// TimeScale multiplies the period of rate schedules; tests compress
	// time with it. Zero means 1.
	TimeScale float64
	Logger    *slog.Logger
}

// Scheduler fires rules. Create it with New and run it with Run.
type Scheduler struct {
	cfg  Config
	log  *slog.Logger
	node string // this node's lease holder name

	mu     sync.Mutex
	parsed map[string]schedule.Schedule // by expression
}

// New returns a scheduler.
func New(cfg Config) *Scheduler {
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger.With("part", "scheduler"), node: uuid.NewString(), parsed: map[string]schedule.Schedule{}}
}

// Run fires due ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var leaseUntil time.Time
	leaseFailing := false // logged once while the lease cannot be taken
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if now.After(leaseUntil.Add(-leaseTTL / 2)) {
			owner, err := s.cfg.Store.AcquireLease(ctx, "scheduler", s.node, leaseTTL)
			switch {
			case err != nil && ctx.Err() == nil && !leaseFailing:
				s.log.Warn("scheduler lease cannot be taken; schedules wait until it can", "err", err)
				leaseFailing = true
			case err == nil && leaseFailing:
				s.log.Info("scheduler lease can be taken again")
				leaseFailing = false
			}
			if !owner {
				leaseUntil = time.Time{}
				continue
			}
			leaseUntil = now.Add(leaseTTL)
		}
		for _, rule := range s.cfg.Store.ListRules(ctx, "") {
			if rule.State == "ENABLED" && rule.ScheduleExpression != "" {
				if err := s.step(ctx, rule, now); err != nil && ctx.Err() == nil {
					s.log.Warn("schedule rule failed", "rule", rule.Name, "err", err)
				}
			}
		}
	}
}

// parse returns the parsed schedule of an expression, cached.
func (s *Scheduler) parse(expr string) (schedule.Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sched, ok := s.parsed[expr]; ok {
		return sched, nil
	}
	sched, err := schedule.Parse(expr)
	if err == nil {
		s.parsed[expr] = sched
	}
	return sched, err
}

// next returns the first tick of rule's schedule after t, and false if
// there is none.
func (s *Scheduler) next(sched schedule.Schedule, rule *lamina.Rule, t time.Time) (time.Time, bool) {
	period, isRate := schedule.Rate(sched)
	if !isRate {
		return sched.Next(t)
	}
	period = max(time.Duration(float64(period)*s.cfg.TimeScale), time.Millisecond)
	anchor := time.UnixMilli(rule.Created)
	if t.Before(anchor) {
		return anchor.Add(period), true
	}
	n := t.Sub(anchor)/period + 1
	return anchor.Add(n * period), true
}

// step fires rule's tick if one is due.
func (s *Scheduler) step(ctx context.Context, rule *lamina.Rule, now time.Time) error {
	sched, err := s.parse(rule.ScheduleExpression)
	if err != nil {
		return err
	}
	st, rev, err := s.cfg.Store.GetScheduleState(ctx, rule.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if st == nil || st.Expression != rule.ScheduleExpression || st.Anchor != rule.Created {
		// A new or changed schedule starts with its next tick from now.
		next, ok := s.next(sched, rule, now)
		if !ok {
			return nil
		}
		_, err := s.cfg.Store.SetScheduleState(ctx, rule.Name, &store.ScheduleState{
			Expression: rule.ScheduleExpression, Anchor: rule.Created, Next: next.UnixMilli(),
		}, rev)
		return err
	}
	due := time.UnixMilli(st.Next)
	if now.Before(due) {
		return nil
	}
	// Find the latest tick that is due; the ones before it were missed.
	skipped := 0
	for {
		next, ok := s.next(sched, rule, due)
		if !ok || next.After(now) {
			break
		}
		due = next
		skipped++
	}
	fire := now.Sub(due) <= lateness
	if !fire {
		skipped++
	}
	if skipped > 0 {
		s.log.Warn("schedule ticks missed while no node ran them; skipped", "rule", rule.Name, "skipped", skipped)
	}
	next, ok := s.next(sched, rule, due)
	if !ok {
		next = time.UnixMilli(1<<62 - 1)
	}
	newState := *st
	newState.Next = next.UnixMilli()
	if fire {
		newState.Last = due.UnixMilli()
		// Queue first: the events' IDs are derived from the tick, so if
		// another node fires the same tick the queue keeps one of each.
		for _, target := range rule.Targets {
			if err := s.fire(ctx, rule, target, due); err != nil {
				return err
			}
		}
	}
	_, err = s.cfg.Store.SetScheduleState(ctx, rule.Name, &newState, rev)
	return err
}

// fire sends one target the event of the tick at due.
func (s *Scheduler) fire(ctx context.Context, rule *lamina.Rule, target lamina.Target, due time.Time) error {
	id := tickID(rule.Name, target.Id, due)
	event := lamina.ScheduledEvent(id, s.cfg.AccountID, s.cfg.Region, rule.Arn, due)
	decoded, err := eventpattern.Decode(event)
	if err != nil {
		return err
	}
	payload, err := eventbus.Input(target, decoded, event, rule, due)
	if err != nil {
		return err
	}
	err = s.cfg.Deliver(ctx, target.Arn, &targets.Message{ID: id, Payload: payload, Principal: policy.PrincipalEvents, SourceArn: rule.Arn})
	var ae *awsproto.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, targets.ErrNotPermitted), errors.As(err, &ae) && ae.Status < 500:
		s.log.Warn("rule target not invoked", "rule", rule.Name, "target", target.Arn, "err", err)
		return nil
	}
	if _, perr := targets.Parse(s.cfg.Region, s.cfg.AccountID, target.Arn); perr != nil {
		s.log.Warn("rule target not invoked", "rule", rule.Name, "target", target.Arn, "err", perr)
		return nil
	}
	return err
}

// tickID derives a stable UUID from a rule, target and tick.
func tickID(rule, target string, due time.Time) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("lamina:rule/"+rule+"/"+target+"/"+strconv.FormatInt(due.UnixMilli(), 10))).String()
}
