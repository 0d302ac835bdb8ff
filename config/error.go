package config

import (
	"fmt"
	"strconv"
)

// Error is one problem in a configuration file. Every problem config reports
// is an *Error, joined with errors.Join when there are several.
type Error struct {
	File string // file name as given, "(embedded default)" for the built-in one
	Line int    // 1-based; 0 when the problem has no place in the file
	Key  string // dotted key path such as "queues[1].strategy"; empty for syntax errors
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
}
