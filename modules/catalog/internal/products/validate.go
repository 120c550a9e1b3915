// Package products is the catalog's domain: the rules a product obeys, its storage,
// and the request handlers that change it and publish what changed.
package products

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/agora-commerce/agora/modules/catalog"
)

var (
	skuPattern      = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_-]{0,63}$`)
	categoryPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

func invalid(field, format string, args ...any) error {
	return catalog.ErrInvalidProduct.Withf(format, args...).OnField(field)
}

// validate checks every rule of a product's fields. It is the catalog's own check:
// the HTTP schema says much of the same, but requests can arrive from any module.
func validate(p *catalog.Product) error {
	if !skuPattern.MatchString(p.SKU) {
		return invalid("sku", "sku must be 1-64 upper-case letters, digits, '-' or '_', starting with a letter or digit")
	}
	if err := checkText("name", p.Name, 1, catalog.MaxNameLen); err != nil {
		return err
	}
	if err := checkText("description", p.Description, 0, catalog.MaxDescriptionLen); err != nil {
		return err
	}
	if p.Category != "" && !categoryPattern.MatchString(p.Category) {
		return invalid("category", "category must be 1-64 lower-case letters, digits or '-'")
	}
	if err := checkMoney("price", p.Price); err != nil {
		return err
	}
	if len(p.Attributes) > catalog.MaxAttributes {
		return invalid("attributes", "at most %d attributes", catalog.MaxAttributes)
	}
	for k, v := range p.Attributes {
		if err := checkText("attributes", k, 1, catalog.MaxAttrKeyLen); err != nil {
			return invalid("attributes", "attribute names must be 1-%d characters", catalog.MaxAttrKeyLen)
		}
		if err := checkText("attributes."+k, v, 0, catalog.MaxAttrValueLen); err != nil {
			return err
		}
	}
	if p.ImageURL != "" {
		u, err := url.Parse(p.ImageURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(p.ImageURL) > 2048 {
			return invalid("image_url", "image_url must be an http(s) URL of at most 2048 characters")
		}
	}
	switch p.Status {
	case catalog.StatusDraft, catalog.StatusActive, catalog.StatusArchived:
	default:
		return invalid("status", "status must be draft or active")
	}
	return nil
}

func checkMoney(field string, m catalog.Money) error {
	if !currencyPattern.MatchString(m.Currency) {
		return invalid(field+".currency", "currency must be an ISO 4217 code such as EUR")
	}
	if m.Amount < 0 || m.Amount > 100_000_000_000 {
		return invalid(field+".amount", "amount must be between 0 and 100000000000 minor units")
	}
	return nil
}

func checkText(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "%s must be valid UTF-8", field)
	}
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if n < minLen || utf8.RuneCountInString(s) > maxLen {
		return invalid(field, "%s must be %d to %d characters", field, minLen, maxLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
		return invalid(field, "%s must not contain control characters", field)
	}
	return nil
}

func searchText(p *catalog.Product) string {
	return strings.ToLower(p.Name + "\n" + p.Description)
}

func describe(p *catalog.Product) string { return fmt.Sprintf("%s (%s)", p.SKU, p.ID) }
