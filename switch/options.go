package payswitch

// Option changes how New builds a switch beyond its configuration.
type Option func(*options)

type options struct {
	journalFault func(op string) error
	configFile   string // what POST /v1/reload re-reads (WithConfigFile)
}

// WithJournalFault makes the journal ask fault before every write (see
// journal.Options.Fault): a non-nil error fails that write as a failed
// commit would. For tests that fail the journal in-process (a full disk
// while the issuer is answering); never set in production.
func WithJournalFault(fault func(op string) error) Option {
	return func(o *options) { o.journalFault = fault }
}
