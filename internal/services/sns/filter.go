package sns

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/lamina-project/lamina/internal/eventpattern"
)

// Filter policies: a subscription's FilterPolicy is an event pattern
// (internal/eventpattern: exact values, prefix, suffix, equals-ignore-case,
// anything-but, numeric, exists, cidr, $or) matched against either the
// message's attributes (FilterPolicyScope MessageAttributes, the default),
// seen as a flat object — String values as strings, Number values as
// numbers, String.Array values as arrays whose elements each may match,
// Binary values not at all — or the message body parsed as JSON
// (MessageBody scope), where the policy may nest.

// filter is a subscription's compiled filter policy.
type filter struct {
	pattern *eventpattern.Pattern
	body    bool // MessageBody scope
}

// filterCacheSize bounds the compiled policies a node keeps.
const filterCacheSize = 10000

var (
	filterCacheMu sync.Mutex
	filterCache   = map[string]*filter{}
)

// compileFilter returns the filter of a subscription's attributes, nil
// when it has none.
func compileFilter(attrs map[string]string) (*filter, error) {
	policy := attrs["FilterPolicy"]
	if policy == "" {
		return nil, nil
	}
	body := attrs["FilterPolicyScope"] == "MessageBody"
	key := attrs["FilterPolicyScope"] + "\x00" + policy
	filterCacheMu.Lock()
	f := filterCache[key]
	filterCacheMu.Unlock()
	if f != nil {
		return f, nil
	}
	p, err := eventpattern.CompileSize(policy, maxFilterPolicy)
	if err != nil {
		return nil, errInvalidParameter("FilterPolicy: %v", err)
	}
	var root map[string]any
	_ = json.Unmarshal([]byte(policy), &root) // it compiled: an object
	if !body {
		if err := checkFlat(root); err != nil {
			return nil, err
		}
	}
	if keys := countKeys(root); keys > maxPolicyKeys {
		return nil, errLimit("FilterPolicyLimitExceeded", "Filter policy is too complex: it names %d keys, more than %d.", keys, maxPolicyKeys)
	}
	f = &filter{pattern: p, body: body}
	filterCacheMu.Lock()
	if len(filterCache) >= filterCacheSize {
		clear(filterCache)
	}
	filterCache[key] = f
	filterCacheMu.Unlock()
	return f, nil
}

// checkFilter checks a subscription's filter attributes.
func checkFilter(attrs map[string]string) error {
	_, err := compileFilter(attrs)
	return err
}

// checkFlat refuses nested keys in a policy of the MessageAttributes
// scope.
func checkFlat(obj map[string]any) error {
	for key, v := range obj {
		switch v := v.(type) {
		case map[string]any:
			return errInvalidParameter("FilterPolicy: Filter policy scope MessageAttributes does not support nested filter policy (key %s)", key)
		case []any:
			if key == "$or" {
				for _, alt := range v {
					if err := checkFlat(alt.(map[string]any)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// countKeys counts the distinct leaf keys a policy names.
func countKeys(obj map[string]any) int {
	n := 0
	for key, v := range obj {
		switch v := v.(type) {
		case map[string]any:
			n += countKeys(v)
		case []any:
			if key == "$or" {
				most := 0
				for _, alt := range v {
					most = max(most, countKeys(alt.(map[string]any)))
				}
				n += most
			} else {
				n++
			}
		}
	}
	return n
}

// match reports whether a message passes the filter.
func (f *filter) match(m *message) bool {
	if f.body {
		event, err := eventpattern.Decode([]byte(m.body))
		if err != nil {
			return false // a body that is not JSON matches no body policy
		}
		return f.pattern.Match(event)
	}
	return f.pattern.Match(m.attributeEvent())
}

// attributeEvent is the message's attributes as the object a
// MessageAttributes policy matches.
func (m *message) attributeEvent() map[string]any {
	event := make(map[string]any, len(m.attributes))
	for name, a := range m.attributes {
		switch {
		case a.DataType == "Number" || strings.HasPrefix(a.DataType, "Number."):
			event[name] = json.Number(a.StringValue)
		case a.DataType == "String.Array":
			if list, err := eventpattern.Decode([]byte(a.StringValue)); err == nil {
				event[name] = list
			}
		case a.DataType == "String" || strings.HasPrefix(a.DataType, "String."):
			event[name] = a.StringValue
		}
	}
	return event
}
