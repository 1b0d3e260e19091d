/* redact.h: included by tally.h; declarations with one-line contracts. */
#ifndef TALLY_REDACT_H
#define TALLY_REDACT_H

#endif
