package config

import (
	"encoding"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// decode copies the generically parsed document into c, strictly: every
// unknown key and every value of the wrong type is reported, not only the
// first as go-toml's strict decoder does, and what is well-formed is still
// decoded so that Validate can report its problems in the same pass.
func (c *Config) decode(doc map[string]any) []error {
	var errs []error
	c.walk("", doc, reflect.ValueOf(c).Elem(), &errs)
	return errs
}

func (c *Config) walk(path string, v any, dst reflect.Value, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, c.errorf(path, format, args...))
	}
	t := dst.Type()
	if u, ok := dst.Addr().Interface().(encoding.TextUnmarshaler); ok {
		s, ok := v.(string)
		if !ok {
			fail("want a string, got %s", describe(v))
			return
		}
		if err := u.UnmarshalText([]byte(s)); err != nil {
			fail("%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			fail("want a table, got %s", describe(v))
			return
		}
		fields := tomlFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			sub := joinPath(path, k)
			if !ok {
				*errs = append(*errs, c.errorf(sub, "unknown key (known here: %s)", strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			c.walk(sub, m[k], dst.FieldByIndex(f.Index), errs)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			fail("want a table, got %s", describe(v))
			return
		}
		dst.Set(reflect.MakeMapWithSize(t, len(m)))
		for _, k := range sortedKeys(m) {
			e := reflect.New(t.Elem()).Elem()
			c.walk(joinPath(path, k), m[k], e, errs)
			dst.SetMapIndex(reflect.ValueOf(k), e)
		}
	case reflect.Slice:
		var elems []any
		switch a := v.(type) {
		case []any:
			elems = a
		case []map[string]any: // [[x]] tables
			for _, m := range a {
				elems = append(elems, m)
			}
		default:
			fail("want an array, got %s", describe(v))
			return
		}
		dst.Set(reflect.MakeSlice(t, len(elems), len(elems)))
		for i, e := range elems {
			c.walk(path+"["+strconv.Itoa(i)+"]", e, dst.Index(i), errs)
		}
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			fail("want a string, got %s", describe(v))
			return
		}
		dst.SetString(s)
	case reflect.Int:
		n, ok := v.(int64)
		switch {
		case !ok:
			fail("want an integer, got %s", describe(v))
		case n < math.MinInt32 || n > math.MaxInt32:
			fail("integer %d out of range", n)
		default:
			dst.SetInt(n)
		}
	case reflect.Float64:
		switch n := v.(type) {
		case float64:
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			fail("want a number, got %s", describe(v))
		}
	case reflect.Pointer: // optional values: absent is nil
		p := reflect.New(t.Elem())
		c.walk(path, v, p.Elem(), errs)
		dst.Set(p)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			fail("want true or false, got %s", describe(v))
			return
		}
		dst.SetBool(b)
	default:
		panic(fmt.Sprintf("config: field type %s at %s has no shape check", t, path))
	}
}

func (c *Config) errorf(path, format string, args ...any) *Error {
	return &Error{File: c.file, Line: c.pos.line(path), Key: path, Msg: fmt.Sprintf(format, args...)}
}

func tomlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			fields[name] = f
		}
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("number %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, time.Duration:
		return fmt.Sprintf("date/time %v", v)
	default:
		return fmt.Sprintf("%T", v)
	}
}
