package demo

// The demo's two schemas: an ERP with natural keys (company DataAreaId,
// currency codes, customer accounts) and a CRM with surrogate UUID keys
// and lookups, as Finance & Operations and Dataverse have. Companies are
// modelled the D365 way: customer groups and customers belong to a
// company (dataareaid on the ERP, a uuid reference to cdm_company on the
// CRM), the same group code and the same account number exist in several
// companies, and every lookup into them resolves within the row's company.

const erpSchema = `
CREATE TABLE IF NOT EXISTS companies (
	dataareaid TEXT PRIMARY KEY,
	name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS currencies (
	currencycode TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	symbol TEXT
);
CREATE TABLE IF NOT EXISTS custgroups (
	dataareaid TEXT NOT NULL,
	custgroup TEXT NOT NULL,
	description TEXT,
	PRIMARY KEY (dataareaid, custgroup)
);
CREATE TABLE IF NOT EXISTS custtable (
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
CREATE TABLE IF NOT EXISTS vendtable (
	dataareaid TEXT NOT NULL,
	accountnum TEXT NOT NULL,
	name TEXT NOT NULL,
	currency TEXT,
	PRIMARY KEY (dataareaid, accountnum)
);
`

const crmSchema = `
CREATE TABLE IF NOT EXISTS cdm_company (
	cdm_companyid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	cdm_companycode TEXT NOT NULL UNIQUE,
	cdm_name TEXT
);
CREATE TABLE IF NOT EXISTS transactioncurrency (
	transactioncurrencyid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	isocurrencycode TEXT NOT NULL UNIQUE,
	currencyname TEXT,
	currencysymbol TEXT
);
CREATE TABLE IF NOT EXISTS msdyn_customergroup (
	msdyn_customergroupid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	msdyn_company UUID NOT NULL,
	msdyn_groupid TEXT NOT NULL,
	msdyn_description TEXT,
	UNIQUE (msdyn_company, msdyn_groupid)
);
CREATE TABLE IF NOT EXISTS account (
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
CREATE TABLE IF NOT EXISTS msdyn_vendor (
	msdyn_vendorid UUID PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))),
	msdyn_company UUID NOT NULL,
	msdyn_vendoraccountnumber TEXT NOT NULL,
	msdyn_name TEXT,
	transactioncurrencyid UUID,
	UNIQUE (msdyn_company, msdyn_vendoraccountnumber)
);
`

// Pre-existing rows: some on both sides, some on one side only, and
// conflicting ones (same key, different values) that the master resolves.
const erpSeed = `
INSERT INTO companies VALUES ('usmf', 'Contoso USA'), ('demf', 'Contoso Germany');
INSERT INTO currencies VALUES ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€'), ('GBP', 'Pound sterling', '£');
INSERT INTO custgroups VALUES ('usmf', '10', 'Wholesale'), ('usmf', '20', 'Retail'),
	('demf', '10', 'Großhandel'), ('demf', '20', 'Einzelhandel');
INSERT INTO custtable (dataareaid, accountnum, name, currency, custgroup, custtype, creditlimit, invoiceaccount) VALUES
	('usmf', 'US-001', 'Contoso Retail San Diego', 'USD', '10', 'Organization', '25000.0000', NULL),
	('usmf', 'US-002', 'Fabrikam Electronics', 'USD', '20', 'Organization', '5000.5000', 'US-001'),
	('demf', 'DE-001', 'Contoso Europe GmbH', 'EUR', '10', 'Organization', '10000.0000', NULL),
	('demf', 'DE-002', 'Jürgen Müller', 'EUR', '20', 'Person', '750.2500', NULL),
	('usmf', 'C-100', 'Litware Inc.', 'USD', '10', 'Organization', '8000.0000', 'C-100'),
	('demf', 'C-100', 'Litware GmbH', 'EUR', '10', 'Organization', '6000.0000', 'DE-001');
INSERT INTO vendtable VALUES ('usmf', 'V-001', 'Northwind Traders', 'USD');
`

const crmSeed = `
INSERT INTO cdm_company (cdm_companycode, cdm_name) VALUES ('usmf', 'Contoso USA'), ('gbsi', 'Contoso UK');
INSERT INTO transactioncurrency (isocurrencycode, currencyname, currencysymbol) VALUES
	('USD', 'US Dollar', '$'), ('EUR', 'Euro (CRM)', '€'), ('JPY', 'Yen', '¥');
INSERT INTO msdyn_customergroup (msdyn_company, msdyn_groupid, msdyn_description)
	SELECT cdm_companyid, '10', 'Wholesale' FROM cdm_company WHERE cdm_companycode = 'usmf';
INSERT INTO msdyn_customergroup (msdyn_company, msdyn_groupid, msdyn_description)
	SELECT cdm_companyid, '30', 'Internet' FROM cdm_company WHERE cdm_companycode = 'usmf';
INSERT INTO msdyn_customergroup (msdyn_company, msdyn_groupid, msdyn_description)
	SELECT cdm_companyid, '10', 'Wholesale UK' FROM cdm_company WHERE cdm_companycode = 'gbsi';
INSERT INTO account (msdyn_company, accountnumber, name, transactioncurrencyid, msdyn_customergroupid, customertypecode, creditlimit)
	SELECT c.cdm_companyid, 'US-001', 'Contoso Retail (CRM)', t.transactioncurrencyid, g.msdyn_customergroupid, 1, '30000.0000'
	FROM cdm_company c, transactioncurrency t, msdyn_customergroup g
	WHERE c.cdm_companycode = 'usmf' AND t.isocurrencycode = 'USD' AND g.msdyn_groupid = '10' AND g.msdyn_company = c.cdm_companyid;
INSERT INTO account (msdyn_company, accountnumber, name, transactioncurrencyid, msdyn_customergroupid, customertypecode, creditlimit)
	SELECT c.cdm_companyid, 'US-003', 'Adventure Works', t.transactioncurrencyid, g.msdyn_customergroupid, 2, '1200.0000'
	FROM cdm_company c, transactioncurrency t, msdyn_customergroup g
	WHERE c.cdm_companycode = 'usmf' AND t.isocurrencycode = 'USD' AND g.msdyn_groupid = '30' AND g.msdyn_company = c.cdm_companyid;
INSERT INTO account (msdyn_company, accountnumber, name, transactioncurrencyid, msdyn_customergroupid, customertypecode, creditlimit)
	SELECT c.cdm_companyid, 'C-100', 'Litware Ltd', t.transactioncurrencyid, g.msdyn_customergroupid, 1, '4000.0000'
	FROM cdm_company c, transactioncurrency t, msdyn_customergroup g
	WHERE c.cdm_companycode = 'gbsi' AND t.isocurrencycode = 'USD' AND g.msdyn_groupid = '10' AND g.msdyn_company = c.cdm_companyid;
`

// configYAML is the demo's link: ERP on the left, CRM on the right.
const configYAML = `# dualwrite demo: an ERP (left) and a CRM (right).
link:
  name: demo
  left:  {name: erp, driver: %s, dsn: %q}
  right: {name: crm, driver: %s, dsn: %q}
engine:
  data_dir: %q
  listen: %q
  poll_interval: 20ms
maps:
  - name: companies
    left: companies
    right: cdm_company
    key: [{left: dataareaid, right: cdm_companycode}]
    columns:
      - {left: dataareaid, right: cdm_companycode}
      - {left: name, right: cdm_name, default: "(no name)"}
  - name: currencies
    left: currencies
    right: transactioncurrency
    key: [{left: currencycode, right: isocurrencycode}]
    columns:
      - {left: currencycode, right: isocurrencycode}
      - {left: name, right: currencyname, default: "(no name)"}
      - {left: symbol, right: currencysymbol}
  - name: customergroups
    left: custgroups
    right: msdyn_customergroup
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: custgroup, right: msdyn_groupid}
    columns:
      - {left: custgroup, right: msdyn_groupid}
      - {left: description, right: msdyn_description}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
  - name: customers
    left: custtable
    right: account
    master: crm
    depends_on: [companies, currencies, customergroups]
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: accountnum, right: accountnumber}
    columns:
      - {left: accountnum, right: accountnumber}
      - {left: name, right: name, default: "(no name)"}
      - {left: custtype, right: customertypecode, value_map: {Organization: "1", Person: "2"}}
      - {left: creditlimit, right: creditlimit, default: 0}
      - {right: description, direction: left_to_right, left_to_right: 'name + " (" + accountnum + ")"'}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
      - {map: currencies, left: currency, right: transactioncurrencyid, right_ref: transactioncurrencyid}
      # within the customer's company: group 10 of usmf is not group 10 of demf
      - {map: customergroups, left: custgroup, left_ref: custgroup, right: msdyn_customergroupid, right_ref: msdyn_customergroupid}
      - {map: customers, left: invoiceaccount, left_ref: accountnum, right: msdyn_invoiceaccount, right_ref: accountid}
    filter:
      left: 'blocked == 0'
  - name: vendors
    left: vendtable
    right: msdyn_vendor
    depends_on: [companies, currencies]
    key:
      - {left: dataareaid, right: msdyn_company, company: true}
      - {left: accountnum, right: msdyn_vendoraccountnumber}
    columns:
      - {left: accountnum, right: msdyn_vendoraccountnumber}
      - {left: name, right: msdyn_name, default: "(no name)"}
    lookups:
      - {map: companies, left: dataareaid, right: msdyn_company, right_ref: cdm_companyid}
      - {map: currencies, left: currency, right: transactioncurrencyid, right_ref: transactioncurrencyid}
`
