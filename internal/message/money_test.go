package message_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/agora-commerce/agora/internal/message"
)

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    message.Money
		want string
	}{
		{message.Money{Amount: 0, Currency: "EUR"}, "EUR 0.00"},
		{message.Money{Amount: 5, Currency: "EUR"}, "EUR 0.05"},
		{message.Money{Amount: 50, Currency: "EUR"}, "EUR 0.50"},
		{message.Money{Amount: 1999, Currency: "EUR"}, "EUR 19.99"},
		{message.Money{Amount: 99999, Currency: "EUR"}, "EUR 999.99"},
		{message.Money{Amount: 100000, Currency: "EUR"}, "EUR 1,000.00"},
		{message.Money{Amount: 123450, Currency: "EUR"}, "EUR 1,234.50"},
		{message.Money{Amount: 123456789, Currency: "USD"}, "USD 1,234,567.89"},
		{message.Money{Amount: 100000000000, Currency: "USD"}, "USD 1,000,000,000.00"},
		// No minor unit.
		{message.Money{Amount: 0, Currency: "JPY"}, "JPY 0"},
		{message.Money{Amount: 999, Currency: "JPY"}, "JPY 999"},
		{message.Money{Amount: 1500, Currency: "JPY"}, "JPY 1,500"},
		{message.Money{Amount: 1234567, Currency: "KRW"}, "KRW 1,234,567"},
		// Three and four decimals.
		{message.Money{Amount: 1234, Currency: "KWD"}, "KWD 1.234"},
		{message.Money{Amount: 7, Currency: "BHD"}, "BHD 0.007"},
		{message.Money{Amount: 1234567, Currency: "TND"}, "TND 1,234.567"},
		{message.Money{Amount: 12345, Currency: "CLF"}, "CLF 1.2345"},
		// A code the table does not know has two decimals.
		{message.Money{Amount: 1234, Currency: "XYZ"}, "XYZ 12.34"},
		{message.Money{Amount: 1234}, "12.34"},
		// Negative amounts (a refund shown as a debit), down to the smallest.
		{message.Money{Amount: -250, Currency: "GBP"}, "GBP -2.50"},
		{message.Money{Amount: -123456, Currency: "JPY"}, "JPY -123,456"},
		{message.Money{Amount: math.MinInt64, Currency: "EUR"}, "EUR -92,233,720,368,547,758.08"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func ExampleMoney_String() {
	fmt.Println(message.Money{Amount: 123450, Currency: "EUR"})
	fmt.Println(message.Money{Amount: 1500, Currency: "JPY"})
	// Output:
	// EUR 1,234.50
	// JPY 1,500
}
