package specs

// Data element numbers (ISO 8583:1987) that the switch reads or writes.
const (
	PAN                  = 2
	ProcessingCode       = 3
	Amount               = 4
	TransmissionDateTime = 7
	STAN                 = 11
	LocalTime            = 12
	LocalDate            = 13
	Expiry               = 14
	POSEntryMode         = 22
	Track2               = 35
	RRN                  = 37
	ApprovalCode         = 38
	ResponseCode         = 39
	TerminalID           = 41
	MerchantID           = 42
	PrivateData          = 48
	Currency             = 49
	PINBlock             = 52
	ICCData              = 55
	MAC                  = 64
	NetworkMgmtCode      = 70
	OriginalData         = 90
	ReplacementAmounts   = 95
	MAC2                 = 128
)

// Network management information codes (DE 70).
const (
	NetMgmtSignOn    = "001"
	NetMgmtSignOff   = "002"
	NetMgmtEcho      = "301"
	NetMgmtKeyChange = "161"
)

// Numeric lists the data elements of class n (digits only) that the switch
// validates before it acts on them.
var Numeric = []int{ProcessingCode, Amount, TransmissionDateTime, STAN, LocalTime, LocalDate, Expiry, POSEntryMode, NetworkMgmtCode, OriginalData}
