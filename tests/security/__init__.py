"""Security regression suite (issue 10): one test per refusal the product promises."""
