package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps key paths ("queues[1].skills.billing") to the line that
// defines them. go-toml's decoder reports positions only for the first
// error it meets, so config walks the document itself to name the line of
// every problem Validate finds.
type positions map[string]int

// line returns the line of path, or of its nearest ancestor that has one:
// a missing key is reported at the table that should have held it.
func (p positions) line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// scanPositions records the line of every table, array-table element and
// key in data. It returns nil on a syntax error: the decoder reports that
// one with its own position.
func scanPositions(data []byte) positions {
	pos := positions{}
	arrayLen := map[string]int{} // array-table path → elements seen so far
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = joinKey("", keyParts(e), arrayLen)
			pos[table] = lineOf(&p, e.Child())
		case unstable.ArrayTable:
			parts := keyParts(e)
			name := joinKey("", parts[:len(parts)-1], arrayLen)
			if name != "" {
				name += "."
			}
			name += parts[len(parts)-1]
			i := arrayLen[name]
			arrayLen[name] = i + 1
			table = name + "[" + strconv.Itoa(i) + "]"
			pos[table] = lineOf(&p, e.Child())
		case unstable.KeyValue:
			recordKeyValue(&p, pos, table, e, arrayLen)
		}
	}
	if p.Error() != nil {
		return nil
	}
	return pos
}

func recordKeyValue(p *unstable.Parser, pos positions, table string, kv *unstable.Node, arrayLen map[string]int) {
	path := joinKey(table, keyParts(kv), arrayLen)
	pos[path] = lineOf(p, kv)
	recordValue(p, pos, path, kv.Value(), arrayLen)
}

func recordValue(p *unstable.Parser, pos positions, path string, v *unstable.Node, arrayLen map[string]int) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				recordKeyValue(p, pos, path, n, arrayLen)
			}
		}
	case unstable.Array:
		it := v.Children()
		i := 0
		for it.Next() {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			elem := path + "[" + strconv.Itoa(i) + "]"
			if l := lineOf(p, n); l > 0 {
				pos[elem] = l
			}
			recordValue(p, pos, elem, n, arrayLen)
			i++
		}
	}
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	it := n.Key()
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// joinKey appends dotted key parts to base. A part that names an array of
// tables refers to its latest element, as TOML's [a.b] under [[a]] does.
func joinKey(base string, parts []string, arrayLen map[string]int) string {
	path := base
	for _, part := range parts {
		if path != "" {
			path += "."
		}
		path += part
		if n, ok := arrayLen[path]; ok && n > 0 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

func lineOf(p *unstable.Parser, n *unstable.Node) int {
	if n == nil || n.Raw.Length == 0 {
		return 0
	}
	return p.Shape(n.Raw).Start.Line
}
