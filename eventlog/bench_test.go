package eventlog_test

func removeFixtures() {}
