package s3

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type listEntry struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type commonPrefix struct {
	Prefix string
}

type listV2Result struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Delimiter             string `xml:",omitempty"`
	MaxKeys               int
	EncodingType          string `xml:",omitempty"`
	KeyCount              int
	IsTruncated           bool
	ContinuationToken     string         `xml:",omitempty"`
	NextContinuationToken string         `xml:",omitempty"`
	StartAfter            string         `xml:",omitempty"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listV1Result struct {
	XMLName        xml.Name `xml:"ListBucketResult"`
	Xmlns          string   `xml:"xmlns,attr"`
	Name           string
	Prefix         string
	Marker         string
	NextMarker     string `xml:",omitempty"`
	Delimiter      string `xml:",omitempty"`
	MaxKeys        int
	EncodingType   string `xml:",omitempty"`
	IsTruncated    bool
	Contents       []listEntry    `xml:"Contents"`
	CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
}

// listing is one page of a bucket's keys.
type listing struct {
	entries   []listEntry
	prefixes  []commonPrefix
	truncated bool
	last      string // the last key or common prefix of the page
}

// list returns the keys of bucket that start with prefix and sort after
// after, keys sharing a part up to delimiter rolled up into common
// prefixes, at most max of both.
func (s *Service) list(bucket, prefix, delimiter, after string, max int, withOwner bool) listing {
	var out listing
	own := s.owner()
	for _, o := range s.objects.List(bucket+"/"+hex.EncodeToString([]byte(prefix)), (*objectRecord).live) {
		if o.Key <= after {
			continue
		}
		cp := ""
		if delimiter != "" {
			if i := strings.Index(o.Key[len(prefix):], delimiter); i >= 0 {
				cp = o.Key[:len(prefix)+i+len(delimiter)]
				if cp <= after || (len(out.prefixes) > 0 && out.prefixes[len(out.prefixes)-1].Prefix == cp) {
					continue
				}
			}
		}
		if len(out.entries)+len(out.prefixes) >= max {
			out.truncated = true
			break
		}
		if cp != "" {
			out.prefixes = append(out.prefixes, commonPrefix{Prefix: cp})
			out.last = cp
			continue
		}
		e := listEntry{Key: o.Key, LastModified: o.Modified.Format(timeFormat), ETag: o.ETag, Size: o.Size, StorageClass: "STANDARD"}
		if withOwner {
			e.Owner = &own
		}
		out.entries = append(out.entries, e)
		out.last = o.Key
	}
	return out
}

// encode URL-encodes the names of a listing when the request asked for
// encoding-type=url.
func (l *listing) encode(encoding string) {
	if encoding != "url" {
		return
	}
	for i := range l.entries {
		l.entries[i].Key = url.QueryEscape(l.entries[i].Key)
	}
	for i := range l.prefixes {
		l.prefixes[i].Prefix = url.QueryEscape(l.prefixes[i].Prefix)
	}
}

// listParams reads the parameters listings share.
func listParams(c *call) (prefix, delimiter, encoding string, max int, err error) {
	q := c.Request.URL.Query()
	prefix, delimiter, encoding = q.Get("prefix"), q.Get("delimiter"), q.Get("encoding-type")
	if encoding != "" && encoding != "url" {
		return "", "", "", 0, errInvalidArgument("Invalid Encoding Method specified in Request")
	}
	max = maxKeys
	if v := q.Get("max-keys"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return "", "", "", 0, errInvalidArgument("Provided max-keys not an integer or within integer range")
		}
		max = min(n, maxKeys)
	}
	return prefix, delimiter, encoding, max, nil
}

// escapeIf URL-encodes v when encoding is "url".
func escapeIf(encoding, v string) string {
	if encoding == "url" {
		return url.QueryEscape(v)
	}
	return v
}

func (s *Service) listObjectsV2(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	prefix, delimiter, encoding, max, err := listParams(c)
	if err != nil {
		return err
	}
	q := c.Request.URL.Query()
	token, startAfter := q.Get("continuation-token"), q.Get("start-after")
	after := startAfter
	if token != "" {
		decoded, derr := base64.RawURLEncoding.DecodeString(token)
		if derr != nil {
			return errInvalidArgument("The continuation token provided is incorrect")
		}
		after = max2(after, string(decoded))
	}
	l := s.list(c.bucket, prefix, delimiter, after, max, q.Get("fetch-owner") == "true")
	l.encode(encoding)
	out := listV2Result{Xmlns: xmlns, Name: c.bucket, Prefix: escapeIf(encoding, prefix), Delimiter: escapeIf(encoding, delimiter),
		MaxKeys: max, EncodingType: encoding, KeyCount: len(l.entries) + len(l.prefixes), IsTruncated: l.truncated,
		ContinuationToken: token, StartAfter: escapeIf(encoding, startAfter), Contents: l.entries, CommonPrefixes: l.prefixes}
	if l.truncated {
		out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(l.last))
	}
	return writeXML(c.w, http.StatusOK, out)
}

// max2 returns the greater of two strings.
func max2(a, b string) string {
	if a > b {
		return a
	}
	return b
}

func (s *Service) listObjectsV1(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	prefix, delimiter, encoding, max, err := listParams(c)
	if err != nil {
		return err
	}
	marker := c.Request.URL.Query().Get("marker")
	l := s.list(c.bucket, prefix, delimiter, marker, max, true)
	l.encode(encoding)
	out := listV1Result{Xmlns: xmlns, Name: c.bucket, Prefix: escapeIf(encoding, prefix), Marker: escapeIf(encoding, marker),
		Delimiter: escapeIf(encoding, delimiter), MaxKeys: max, EncodingType: encoding, IsTruncated: l.truncated,
		Contents: l.entries, CommonPrefixes: l.prefixes}
	if l.truncated && delimiter != "" {
		out.NextMarker = escapeIf(encoding, l.last)
	}
	return writeXML(c.w, http.StatusOK, out)
}
