-- Acme's country -> sales region table (a tenant-local module).
return {
  ["United States"] = "north-america", USA = "north-america", Canada = "north-america",
  Germany = "emea", France = "emea", Netherlands = "emea", ["United Kingdom"] = "emea",
  Japan = "apac", Australia = "apac", India = "apac",
}
