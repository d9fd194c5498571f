package awsproto

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The query protocol (form-encoded requests, XML replies) reads and writes
// the same Go types as the JSON protocols. A field's `query` tag says how
// the query protocol names it, as the service's model does:
//
//	query:"Name"                   the member's name (default: the field's)
//	query:"Name,flat"              a flattened list (Name.1, Name.2…) or map
//	query:"Name,flat,key=K,value=V" a map's key and value names (default
//	                               key and value); non-flat maps are
//	                               Name.entry.N.key, non-flat lists
//	                               Name.member.N
//	query:"Name,keep"              a list written even when empty (an empty
//	                               element), for clients that read it
//	                               unconditionally
//	query:"-"                      not in the query protocol
//
// Strings, booleans, integers, []byte (base64), pointers to them, structs,
// slices and maps with string keys are supported; the fields of an embedded
// struct count as the outer struct's, as in encoding/json. Replies omit empty
// strings, nil pointers and empty lists and maps, and always carry
// booleans and numbers.

// queryField is how the query protocol names one struct field.
type queryField struct {
	index      []int // reflect.Value.FieldByIndex's: a field of an embedded struct has two
	name       string
	flat       bool
	keep       bool
	key, value string
}

var queryFields sync.Map // reflect.Type → []queryField

// fieldsOf returns the query names of t's exported fields.
func fieldsOf(t reflect.Type) []queryField {
	if f, ok := queryFields.Load(t); ok {
		return f.([]queryField)
	}
	var fields []queryField
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct && sf.Tag.Get("query") == "" {
			// An embedded struct's fields are the outer struct's, as in JSON.
			for _, inner := range fieldsOf(sf.Type) {
				inner.index = append([]int{i}, inner.index...)
				fields = append(fields, inner)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("query")
		if tag == "-" {
			continue
		}
		f := queryField{index: []int{i}, name: sf.Name, key: "key", value: "value"}
		parts := strings.Split(tag, ",")
		if parts[0] != "" {
			f.name = parts[0]
		}
		for _, opt := range parts[1:] {
			switch {
			case opt == "flat":
				f.flat = true
			case opt == "keep":
				f.keep = true
			case strings.HasPrefix(opt, "key="):
				f.key = opt[len("key="):]
			case strings.HasPrefix(opt, "value="):
				f.value = opt[len("value="):]
			}
		}
		fields = append(fields, f)
	}
	queryFields.Store(t, fields)
	return fields
}

// form is a parsed query request: its parameters, and every parameter name
// and dotted prefix of one, so that a decoder finds the members of a list
// or map without scanning every parameter for each.
type form struct {
	values   url.Values
	prefixes map[string]bool
}

func newForm(values url.Values) *form {
	f := &form{values: values, prefixes: make(map[string]bool, len(values))}
	for name := range values {
		for p := name; ; {
			if f.prefixes[p] {
				break
			}
			f.prefixes[p] = true
			i := strings.LastIndexByte(p, '.')
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	return f
}

// decodeQuery fills v, a pointer to a struct, from a query request's
// parameters. A value that does not parse as its field's type is an
// InvalidParameterValue error.
func decodeQuery(values url.Values, v any) error {
	f := newForm(values)
	return f.decodeStruct(reflect.ValueOf(v).Elem(), "")
}

func (f *form) decodeStruct(v reflect.Value, path string) error {
	for _, qf := range fieldsOf(v.Type()) {
		name := qf.name
		if path != "" {
			name = path + "." + name
		}
		if !f.prefixes[name] {
			continue
		}
		if err := f.decode(v.FieldByIndex(qf.index), name, qf); err != nil {
			return err
		}
	}
	return nil
}

// decode fills v from the parameters at path, which exist.
func (f *form) decode(v reflect.Value, path string, qf queryField) error {
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if err := f.decode(elem.Elem(), path, qf); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	case reflect.Struct:
		return f.decodeStruct(v, path)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return f.decodeScalar(v, path)
		}
		member := path + ".member."
		if qf.flat {
			member = path + "."
		}
		for i := 1; f.prefixes[member+strconv.Itoa(i)]; i++ {
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := f.decode(elem, member+strconv.Itoa(i), queryField{key: "key", value: "value"}); err != nil {
				return err
			}
			v.Set(reflect.Append(v, elem))
		}
		return nil
	case reflect.Map:
		entry := path + ".entry."
		if qf.flat {
			entry = path + "."
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 1; f.prefixes[entry+strconv.Itoa(i)]; i++ {
			e := entry + strconv.Itoa(i)
			key := f.values.Get(e + "." + qf.key)
			elem := reflect.New(v.Type().Elem()).Elem()
			if f.prefixes[e+"."+qf.value] {
				if err := f.decode(elem, e+"."+qf.value, queryField{key: "key", value: "value"}); err != nil {
					return err
				}
			}
			v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
		}
		return nil
	}
	return f.decodeScalar(v, path)
}

// decodeScalar sets v from the parameter named path.
func (f *form) decodeScalar(v reflect.Value, path string) error {
	s := f.values.Get(path)
	bad := func() error {
		return InvalidParameterValue("Value %s for parameter %s is invalid.", s, path)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return bad()
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return bad()
		}
		v.SetFloat(n)
	case reflect.Slice: // []byte
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad()
		}
		v.SetBytes(b)
	default:
		// A field of a type the query protocol has no form for is left as
		// it is: the operation validates what it needs.
	}
	return nil
}

// encodeQueryResult writes the fields of v, a struct or a pointer to one,
// as the content of a query reply's Result element.
func encodeQueryResult(buf *bytes.Buffer, v reflect.Value) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	encodeFields(buf, v)
}

func encodeFields(buf *bytes.Buffer, v reflect.Value) {
	for _, qf := range fieldsOf(v.Type()) {
		encodeXML(buf, qf.name, v.FieldByIndex(qf.index), qf)
	}
}

// encodeXML writes v as the element (or, for flattened lists and maps, the
// elements) named name.
func encodeXML(buf *bytes.Buffer, name string, v reflect.Value, qf queryField) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			encodeXML(buf, name, v.Elem(), qf)
		}
		return
	case reflect.Struct:
		open(buf, name)
		encodeFields(buf, v)
		closeTag(buf, name)
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Len() > 0 {
				element(buf, name, base64.StdEncoding.EncodeToString(v.Bytes()))
			}
			return
		}
		if v.Len() == 0 {
			if qf.keep && !qf.flat {
				open(buf, name)
				closeTag(buf, name)
			}
			return
		}
		item := name
		if !qf.flat {
			open(buf, name)
			item = "member"
		}
		for i := range v.Len() {
			encodeXML(buf, item, v.Index(i), queryField{key: "key", value: "value"})
		}
		if !qf.flat {
			closeTag(buf, name)
		}
		return
	case reflect.Map:
		if v.Len() == 0 {
			return
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		entry := name
		if !qf.flat {
			open(buf, name)
			entry = "entry"
		}
		for _, k := range keys {
			open(buf, entry)
			element(buf, qf.key, k.String())
			encodeXML(buf, qf.value, v.MapIndex(k), queryField{key: "key", value: "value"})
			closeTag(buf, entry)
		}
		if !qf.flat {
			closeTag(buf, name)
		}
		return
	case reflect.String:
		if v.Len() > 0 {
			element(buf, name, v.String())
		}
	case reflect.Bool:
		element(buf, name, strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		element(buf, name, strconv.FormatInt(v.Int(), 10))
	case reflect.Float32, reflect.Float64:
		element(buf, name, strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits()))
	}
}

func open(buf *bytes.Buffer, name string) {
	buf.WriteByte('<')
	buf.WriteString(name)
	buf.WriteByte('>')
}

func closeTag(buf *bytes.Buffer, name string) {
	buf.WriteString("</")
	buf.WriteString(name)
	buf.WriteByte('>')
}

func element(buf *bytes.Buffer, name, text string) {
	open(buf, name)
	_ = xml.EscapeText(buf, []byte(text))
	closeTag(buf, name)
}
