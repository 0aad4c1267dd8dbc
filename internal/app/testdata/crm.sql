CREATE TABLE cdm_company (
	cdm_companyid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	cdm_companycode TEXT NOT NULL UNIQUE,
	cdm_name TEXT
);
CREATE TABLE transactioncurrency (
	transactioncurrencyid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	isocurrencycode TEXT NOT NULL UNIQUE,
	currencyname TEXT,
	currencysymbol TEXT
);
CREATE TABLE msdyn_customergroup (
	msdyn_customergroupid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	msdyn_groupid TEXT NOT NULL UNIQUE,
	msdyn_description TEXT
);
CREATE TABLE account (
	accountid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	msdyn_company UUID NOT NULL,
	accountnumber TEXT NOT NULL,
	name TEXT,
	transactioncurrencyid UUID,
	msdyn_customergroupid UUID,
	customertypecode INTEGER,
	creditlimit DECIMAL(19,4),
	msdyn_invoiceaccount UUID,
	description TEXT,
	UNIQUE (msdyn_company, accountnumber)
);
-- Every update of an account name, in order: shows that a resume applies
-- every intermediate value, not only the last.
CREATE TABLE name_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, accountnumber TEXT, name TEXT);
CREATE TRIGGER account_name_audit AFTER UPDATE OF name ON account BEGIN
	INSERT INTO name_audit (accountnumber, name) VALUES (NEW.accountnumber, NEW.name);
END;
