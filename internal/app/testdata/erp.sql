CREATE TABLE companies (dataareaid TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE currencies (currencycode TEXT PRIMARY KEY, name TEXT NOT NULL, symbol TEXT);
CREATE TABLE custgroups (custgroup TEXT PRIMARY KEY, description TEXT);
CREATE TABLE custtable (
	dataareaid TEXT NOT NULL,
	accountnum TEXT NOT NULL,
	name TEXT NOT NULL,
	currency TEXT,
	custgroup TEXT,
	custtype TEXT NOT NULL DEFAULT 'Organization',
	creditlimit DECIMAL(19,4) NOT NULL DEFAULT 0,
	invoiceaccount TEXT,
	blocked INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (dataareaid, accountnum)
);
