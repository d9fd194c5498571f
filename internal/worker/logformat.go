package worker

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
)

// logFormat is how a function's logs are written and filtered, from its
// LoggingConfig (Lambda's advanced logging controls): platform lines as
// text (START, END, REPORT…) or as JSON records ({"time","type","record"}),
// and, with JSON, the levels below which application and platform lines
// are dropped.
type logFormat struct {
	json        bool
	application int // the least level of application lines kept
	system      int // the least level of platform records kept
}

// Log levels, least to most severe, as LoggingConfig names them.
var logLevels = map[string]int{"TRACE": 1, "DEBUG": 2, "INFO": 3, "WARN": 4, "WARNING": 4, "ERROR": 5, "FATAL": 6, "CRITICAL": 6}

// platformLevels are the levels of the platform's records (Lambda's "event
// mapping for system log levels"): the runtime-done records are DEBUG,
// dropped logs WARN, the rest INFO.
var platformLevels = map[string]int{
	"platform.initRuntimeDone": logLevels["DEBUG"],
	"platform.runtimeDone":     logLevels["DEBUG"],
	"platform.logsDropped":     logLevels["WARN"],
}

// newLogFormat returns the log format of a function configuration.
func newLogFormat(c *lamina.FunctionConfiguration) logFormat {
	if !c.JSONLogs() {
		return logFormat{}
	}
	f := logFormat{json: true, application: logLevels["INFO"], system: logLevels["INFO"]}
	if l, ok := logLevels[c.LoggingConfig.ApplicationLogLevel]; ok {
		f.application = l
	}
	if l, ok := logLevels[c.LoggingConfig.SystemLogLevel]; ok {
		f.system = l
	}
	return f
}

// keepApplication drops, with the JSON format, the application lines below
// the application log level, in place. A line's level is its JSON object's
// "level" (or "log_level", which the Python runtime's error records use);
// lines that are not JSON objects or have no known level are INFO, as
// Lambda counts them.
func (f logFormat) keepApplication(events []logs.Event) []logs.Event {
	if !f.json || f.application <= logLevels["TRACE"] {
		return events
	}
	kept := events[:0]
	for _, e := range events {
		if lineLevel(e.Message) >= f.application {
			kept = append(kept, e)
		}
	}
	return kept
}

// lineLevel returns the level of an application log line.
func lineLevel(line string) int {
	if !strings.HasPrefix(line, "{") {
		return logLevels["INFO"]
	}
	var fields struct {
		Level    string `json:"level"`
		LogLevel string `json:"log_level"`
	}
	if json.Unmarshal([]byte(line), &fields) != nil {
		return logLevels["INFO"]
	}
	for _, name := range []string{fields.Level, fields.LogLevel} {
		if l, ok := logLevels[strings.ToUpper(name)]; ok {
			return l
		}
	}
	return logLevels["INFO"]
}

// platformRecord is a platform line in the JSON format, as Lambda writes
// it to CloudWatch Logs.
type platformRecord struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record any    `json:"record"`
}

// platformLine returns the log line of a platform event: text in the text
// format, else the JSON record, or false when the system log level drops
// it. With JSON, events that have no record (text is "") are not written,
// and events with no text only with JSON.
func (f logFormat) platformLine(ts time.Time, eventType string, record any, text string) (string, bool) {
	if !f.json {
		return text, text != ""
	}
	level, ok := platformLevels[eventType]
	if !ok {
		level = logLevels["INFO"]
	}
	if eventType == "" || level < f.system {
		return "", false
	}
	data, err := json.Marshal(platformRecord{Time: ts.UTC().Format("2006-01-02T15:04:05.000Z"), Type: eventType, Record: record})
	if err != nil {
		return "", false
	}
	return string(data), true
}
