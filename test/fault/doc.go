// Package fault holds the switch's fault test: switchd runs as a child
// process between in-process issuer emulators and simulated POS terminals,
// under load, while issuers go silent or drop links and switchd itself is
// killed and restarted. The test then checks the money: every card's
// balance at its issuer is what its terminals were told, and every
// approval a terminal saw is in the journal.
package fault
