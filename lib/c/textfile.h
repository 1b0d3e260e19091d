/* textfile.h: included by tally.h; declarations with one-line contracts. */
#ifndef TALLY_TEXTFILE_H
#define TALLY_TEXTFILE_H

#endif
