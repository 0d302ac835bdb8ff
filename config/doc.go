// Package config owns dirigent's configuration: the TOML schema, the
// embedded default used when no file is given, strict decoding that reports
// every unknown key and wrong type at once, and Validate, which reports every
// bad value and dangling reference. Each problem names the file, line and key
// so an admin can fix a whole file in one pass.
//
// config imports no other dirigent package.
package config
