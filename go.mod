module github.com/kbpay/switch

go 1.26.8

require (
	github.com/moov-io/iso8583 v0.26.1 // indirect
	github.com/moov-io/iso8583-connection v0.9.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/yerden/go-util v1.1.4 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
