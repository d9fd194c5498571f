package lamina

import (
	"encoding/json"
	"time"
)

// Rule is an EventBridge rule: a schedule rule (on the default event bus)
// invokes its targets on a rate or cron schedule; an event-pattern rule
// sends them the events of its bus that match its pattern.
type Rule struct {
	Name               string
	Arn                string
	ScheduleExpression string `json:",omitempty"`
	EventPattern       string `json:",omitempty"`
	State              string // ENABLED or DISABLED
	Description        string `json:",omitempty"`
	RoleArn            string `json:",omitempty"`
	EventBusName       string
	CreatedBy          string
	// Created is when the rule (or its schedule) was last set, in unix
	// milliseconds: the anchor of rate schedules.
	Created int64
	Targets []Target `json:",omitempty"`
}

// Target is one target of a rule: a function, queue, topic or event bus,
// with at most one of Input (a constant that replaces the event), InputPath
// (the part of the event to send) and InputTransformer.
type Target struct {
	Id               string
	Arn              string
	RoleArn          string            `json:",omitempty"`
	Input            string            `json:",omitempty"`
	InputPath        string            `json:",omitempty"`
	InputTransformer *InputTransformer `json:",omitempty"`
}

// InputTransformer renders a target's input from values of the event:
// InputPathsMap names JSONPaths into the event, InputTemplate uses them as
// <name>.
type InputTransformer struct {
	InputPathsMap map[string]string `json:",omitempty"`
	InputTemplate string
}

// ScheduledEvent is the payload a schedule rule sends its targets: an
// EventBridge "Scheduled Event" for the tick at t.
func ScheduledEvent(id, accountID, region, ruleARN string, t time.Time) []byte {
	data, _ := json.Marshal(map[string]any{ // plain values always encode
		"version":     "0",
		"id":          id,
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     accountID,
		"time":        t.UTC().Format("2006-01-02T15:04:05Z"),
		"region":      region,
		"resources":   []string{ruleARN},
		"detail":      map[string]any{},
	})
	return data
}

// RuleARN returns the ARN of a rule on the default event bus.
func RuleARN(region, accountID, name string) string {
	return "arn:aws:events:" + region + ":" + accountID + ":rule/" + name
}
