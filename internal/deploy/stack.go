package deploy

import (
	"crypto/rand"
	"strings"
	"time"
)

// Stack statuses, as CloudFormation names them.
const (
	StatusReviewInProgress         = "REVIEW_IN_PROGRESS"
	StatusCreateInProgress         = "CREATE_IN_PROGRESS"
	StatusCreateComplete           = "CREATE_COMPLETE"
	StatusCreateFailed             = "CREATE_FAILED"
	StatusRollbackInProgress       = "ROLLBACK_IN_PROGRESS"
	StatusRollbackComplete         = "ROLLBACK_COMPLETE"
	StatusRollbackFailed           = "ROLLBACK_FAILED"
	StatusUpdateInProgress         = "UPDATE_IN_PROGRESS"
	StatusUpdateCleanupInProgress  = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
	StatusUpdateComplete           = "UPDATE_COMPLETE"
	StatusUpdateFailed             = "UPDATE_FAILED"
	StatusUpdateRollbackInProgress = "UPDATE_ROLLBACK_IN_PROGRESS"
	StatusUpdateRollbackComplete   = "UPDATE_ROLLBACK_COMPLETE"
	StatusUpdateRollbackFailed     = "UPDATE_ROLLBACK_FAILED"
	StatusDeleteInProgress         = "DELETE_IN_PROGRESS"
	StatusDeleteComplete           = "DELETE_COMPLETE"
	StatusDeleteFailed             = "DELETE_FAILED"
	StatusDeleteSkipped            = "DELETE_SKIPPED"
)

// MaxEvents bounds the events a stack keeps; older ones are dropped.
const MaxEvents = 300

// MaxChangeSets bounds the change sets a stack keeps at once.
const MaxChangeSets = 20

// Stack is a deployed stack, as the store keeps it.
type Stack struct {
	Name         string
	ID           string // arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
	Status       string
	StatusReason string `json:",omitempty"`
	Description  string `json:",omitempty"`
	// Template is the template as submitted (before the SAM transform).
	Template     string
	Parameters   map[string]string `json:",omitempty"`
	Capabilities []string          `json:",omitempty"`
	Resources    map[string]*StackResource
	Outputs      []StackOutput `json:",omitempty"`
	Created      time.Time
	Updated      time.Time `json:",omitzero"`
	Events       []Event
	ChangeSets   []*ChangeSet `json:",omitempty"`
	// Tags are the stack's tags, as given.
	Tags map[string]string `json:",omitempty"`
}

// StackResource is one resource of a stack.
type StackResource struct {
	LogicalID    string
	Type         string
	PhysicalID   string
	Properties   map[string]any `json:",omitempty"` // resolved
	Attributes   map[string]any `json:",omitempty"`
	DependsOn    []string       `json:",omitempty"`
	Status       string
	StatusReason string `json:",omitempty"`
	Updated      time.Time
	Line         int    `json:",omitempty"`
	From         string `json:",omitempty"`
}

// StackOutput is one of a stack's outputs.
type StackOutput struct {
	OutputKey   string
	OutputValue string
	Description string `json:",omitempty"`
	ExportName  string `json:",omitempty"`
}

// Event is one entry of a stack's history.
type Event struct {
	EventID              string
	Timestamp            time.Time
	LogicalResourceID    string
	PhysicalResourceID   string `json:",omitempty"`
	ResourceType         string
	ResourceStatus       string
	ResourceStatusReason string `json:",omitempty"`
}

// Action is what a deploy does to one resource.
type Action string

// The actions of a plan.
const (
	ActionAdd    Action = "Add"
	ActionModify Action = "Modify"
	ActionRemove Action = "Remove"
)

// Change is one resource's change in a plan.
type Change struct {
	Action            Action
	LogicalID         string
	PhysicalID        string `json:",omitempty"`
	Type              string
	Replacement       bool     `json:",omitempty"`
	ChangedProperties []string `json:",omitempty"`
	Line              int      `json:",omitempty"`
}

// ChangeSet is a planned deploy, kept until it is executed or deleted.
type ChangeSet struct {
	Name         string
	ID           string
	Type         string // CREATE or UPDATE
	Status       string // CREATE_COMPLETE or FAILED
	StatusReason string `json:",omitempty"`
	// ExecutionStatus is AVAILABLE, UNAVAILABLE, EXECUTE_COMPLETE…
	ExecutionStatus string
	Template        string
	Parameters      map[string]string `json:",omitempty"`
	Changes         []Change
	Description     string `json:",omitempty"`
	Created         time.Time
}

// Complete reports whether a status is a stack's resting state.
func Complete(status string) bool {
	return !strings.HasSuffix(status, "_IN_PROGRESS") || status == StatusReviewInProgress
}

// newID returns a random id, as CloudFormation's UUIDs and physical-name
// suffixes are.
func newID() string { return strings.ToLower(rand.Text()) }

// addEvent appends an event to the stack's history, within MaxEvents.
func (s *Stack) addEvent(ev Event) {
	ev.EventID = newID()
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now().UTC()
	}
	s.Events = append(s.Events, ev)
	if over := len(s.Events) - MaxEvents; over > 0 {
		s.Events = append(s.Events[:0:0], s.Events[over:]...)
	}
}

// ChangeSet returns the stack's change set named or identified by name.
func (s *Stack) ChangeSet(name string) *ChangeSet {
	for _, cs := range s.ChangeSets {
		if cs.Name == name || cs.ID == name {
			return cs
		}
	}
	return nil
}
