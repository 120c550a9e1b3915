package message

import (
	"strconv"
	"strings"
)

// Money is an amount in a currency's minor units (cents for EUR) and its ISO 4217
// code: the one representation of an amount that every contract shares. Contracts
// alias it (catalog.Money, orders.Money, payments.Money), so that an amount means
// the same on every message and in the HTTP API's one Money schema.
type Money struct {
	Amount   int64  `json:"amount" minimum:"0" maximum:"100000000000" doc:"amount in minor units (e.g. cents)"`
	Currency string `json:"currency" pattern:"^[A-Z]{3}$" example:"EUR" doc:"ISO 4217 currency code"`
}

// String writes m as customers read it: the currency code, then the amount in the
// currency's own number of decimals (ISO 4217's minor unit: 2 for EUR, 0 for JPY,
// 3 for KWD; 2 for a code the table does not know) with thousands separated by
// commas: "EUR 1,234.50", "JPY 1,500", "KWD 1.234", "GBP -2.50". Every amount a
// customer sees is written by it, so they see one format everywhere.
func (m Money) String() string {
	digits, ok := minorDigits[m.Currency]
	if !ok {
		digits = 2
	}
	sign := ""
	u := uint64(m.Amount)
	if m.Amount < 0 {
		sign, u = "-", uint64(-(m.Amount+1))+1 // no overflow at MinInt64
	}
	s := strconv.FormatUint(u, 10)
	if len(s) <= digits { // at least one digit before the point: "0.05"
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	whole, frac := s[:len(s)-digits], s[len(s)-digits:]
	var b strings.Builder
	b.WriteString(m.Currency)
	if m.Currency != "" {
		b.WriteByte(' ')
	}
	b.WriteString(sign)
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(whole[i])
	}
	if digits > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// minorDigits lists the ISO 4217 currencies whose minor unit is not a hundredth,
// with the number of decimals they have.
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}
