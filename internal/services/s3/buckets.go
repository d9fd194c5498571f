package s3

import (
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/store"
)

// xmlns is the namespace of S3's documents.
const xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"

// timeFormat is how S3's documents write times.
const timeFormat = "2006-01-02T15:04:05.000Z"

// writeXML answers with an XML document.
func writeXML(w http.ResponseWriter, status int, doc any) error {
	data, err := xml.Marshal(doc)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(data)
	return nil
}

// decodeXML reads a request's XML document into v, holding one of the
// service's streams while it is in memory.
func (s *Service) decodeXML(c *call, v any) error {
	if err := s.streams.Acquire(c.Context(), 1); err != nil {
		return err
	}
	defer s.streams.Release(1)
	data, err := readAll(c, maxXMLBody)
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return errMalformedXML()
	}
	return nil
}

// owner is the owner S3 shows of buckets and objects: the account.
type owner struct {
	ID          string
	DisplayName string
}

func (s *Service) owner() owner { return owner{ID: s.cfg.AccountID, DisplayName: "lamina"} }

type listBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Owner   owner
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type bucketEntry struct {
	Name         string
	CreationDate string
	BucketRegion string `xml:",omitempty"`
}

func (s *Service) listBuckets(c *call) error {
	out := listBucketsResult{Xmlns: xmlns, Owner: s.owner(), Buckets: []bucketEntry{}}
	for _, b := range s.buckets.List("", nil) {
		out.Buckets = append(out.Buckets, bucketEntry{Name: b.Name, CreationDate: b.Created.UTC().Format(timeFormat), BucketRegion: s.cfg.Region})
	}
	return writeXML(c.w, http.StatusOK, out)
}

// bucketNameRE is S3's rule for bucket names (general purpose buckets).
var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// validBucketName reports whether S3 would take name for a new bucket.
func validBucketName(name string) bool {
	return bucketNameRE.MatchString(name) && !strings.Contains(name, "..") && net.ParseIP(name) == nil &&
		!strings.HasPrefix(name, "xn--") && !strings.HasSuffix(name, "-s3alias") && !strings.HasSuffix(name, "--ol-s3")
}

// maxBucketConfig bounds a CreateBucketConfiguration document.
const maxBucketConfig = 64 << 10

type createBucketConfiguration struct {
	LocationConstraint string
}

func (s *Service) createBucket(c *call) error {
	if !validBucketName(c.bucket) {
		return s3Error(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
	}
	data, err := readAll(c, maxBucketConfig)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		var cfg createBucketConfiguration
		if xml.Unmarshal(data, &cfg) != nil {
			return errMalformedXML()
		}
		if cfg.LocationConstraint != "" && cfg.LocationConstraint != s.cfg.Region {
			return s3Error(http.StatusBadRequest, "IllegalLocationConstraintException",
				"The %s location constraint is incompatible for the region specific endpoint this request was sent to.", cfg.LocationConstraint)
		}
	}
	err = s.buckets.Create(c.Context(), c.bucket, &bucketRecord{Name: c.bucket, Created: time.Now().UTC()})
	if errors.Is(err, store.ErrExists) {
		if s.cfg.Region != "us-east-1" {
			return s3Error(http.StatusConflict, "BucketAlreadyOwnedByYou",
				"Your previous request to create the named bucket succeeded and you already own it.")
		}
		// us-east-1 answers a re-creation by its owner with 200, as S3 does.
	} else if err != nil {
		return storeFailure(err)
	}
	c.w.Header().Set("Location", "/"+c.bucket)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) headBucket(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	c.w.Header().Set("X-Amz-Bucket-Region", s.cfg.Region)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) deleteBucket(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	if len(s.objects.List(c.bucket+"/", (*objectRecord).live)) > 0 {
		return s3Error(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
	}
	for _, u := range s.uploads.List("", func(u *uploadRecord) bool { return u.Bucket == c.bucket }) {
		if err := s.abort(c.Context(), u.ID); err != nil {
			return err
		}
	}
	if _, err := s.buckets.Remove(c.Context(), c.bucket, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeFailure(err)
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

func (s *Service) getBucketLocation(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	region := s.cfg.Region
	if region == "us-east-1" {
		region = "" // as S3 shows it
	}
	return writeXML(c.w, http.StatusOK, locationConstraint{Xmlns: xmlns, Region: region})
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
}

// getBucketVersioning answers that versioning was never enabled: Lamina
// keeps one version of each object.
func (s *Service) getBucketVersioning(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	return writeXML(c.w, http.StatusOK, versioningConfiguration{Xmlns: xmlns})
}
