package match

// nicknames maps common English diminutives to a group name, so "bob"
// and "robert" (or "bob" and "rob") reach the nickname level. The list is
// deliberately short: a wrong pairing costs precision everywhere.
var nicknames = map[string]string{
	"abby": "abigail", "al": "albert", "alex": "alexander", "alf": "alfred", "andy": "andrew", "drew": "andrew",
	"angie": "angela", "annie": "ann", "anne": "ann", "anna": "ann", "barb": "barbara", "becky": "rebecca", "becca": "rebecca",
	"ben": "benjamin", "benny": "benjamin", "beth": "elizabeth", "betty": "elizabeth", "liz": "elizabeth", "lizzie": "elizabeth",
	"eliza": "elizabeth", "bill": "william", "billy": "william", "will": "william", "willy": "william", "liam": "william",
	"bob": "robert", "bobby": "robert", "rob": "robert", "robbie": "robert", "bert": "albert", "cathy": "catherine",
	"kathy": "katherine", "kate": "katherine", "katie": "katherine", "kath": "katherine", "kat": "katherine", "kathryn": "katherine",
	"catherine": "katherine", "charlie": "charles", "chuck": "charles", "chris": "christopher", "kit": "christopher",
	"chrissy": "christine", "tina": "christine", "dan": "daniel", "danny": "daniel", "dave": "david", "davy": "david",
	"deb": "deborah", "debbie": "deborah", "dick": "richard", "rick": "richard", "ricky": "richard", "rich": "richard",
	"don": "donald", "donny": "donald", "doug": "douglas", "ed": "edward", "eddie": "edward", "ted": "edward", "ned": "edward",
	"frank": "francis", "fran": "frances", "fred": "frederick", "freddie": "frederick", "gabe": "gabriel", "gerry": "gerald",
	"greg": "gregory", "harry": "henry", "hank": "henry", "jack": "john", "johnny": "john", "jon": "john", "jim": "james",
	"jimmy": "james", "jamie": "james", "jen": "jennifer", "jenny": "jennifer", "jeff": "jeffrey", "jerry": "gerald",
	"jess": "jessica", "jessie": "jessica", "joe": "joseph", "joey": "joseph", "josh": "joshua", "jake": "jacob",
	"judy": "judith", "ken": "kenneth", "kenny": "kenneth", "larry": "lawrence", "len": "leonard", "lenny": "leonard",
	"leo": "leonard", "lou": "louis", "maggie": "margaret", "meg": "margaret", "peggy": "margaret", "marge": "margaret",
	"mandy": "amanda", "matt": "matthew", "matty": "matthew", "mike": "michael", "mick": "michael", "mickey": "michael",
	"mitch": "mitchell", "molly": "mary", "polly": "mary", "nate": "nathan", "nat": "nathan", "nick": "nicholas",
	"nicky": "nicholas", "pam": "pamela", "pat": "patrick", "patty": "patricia", "trish": "patricia", "pete": "peter",
	"phil": "philip", "ray": "raymond", "ron": "ronald", "ronnie": "ronald", "sam": "samuel", "sammy": "samuel",
	"sandy": "sandra", "steve": "stephen", "stevie": "stephen", "steven": "stephen", "sue": "susan", "susie": "susan",
	"suzy": "susan", "tim": "timothy", "timmy": "timothy", "tom": "thomas", "tommy": "thomas", "tony": "anthony",
	"val": "valerie", "vic": "victor", "vicky": "victoria", "tori": "victoria", "walt": "walter", "wally": "walter",
	"zach": "zachary", "zack": "zachary", "theo": "theodore", "terry": "terence", "stu": "stuart", "sid": "sidney",
	"geoff": "geoffrey", "jo": "joanne", "josie": "josephine", "nell": "helen", "nellie": "helen", "sally": "sarah",
	"sadie": "sarah", "gus": "augustus", "bart": "bartholomew", "manny": "emmanuel", "izzy": "isabel", "bella": "isabel",
	"isabelle": "isabel", "izzie": "isabel", "em": "emily", "emmy": "emily", "dot": "dorothy", "dotty": "dorothy",
}

// nicknameGroup returns the name's group, or "" when the name is in no group.
func nicknameGroup(first string) string {
	if g, ok := nicknames[first]; ok {
		return g
	}
	if nicknameTargets[first] {
		return first
	}
	return ""
}

var nicknameTargets = func() map[string]bool {
	t := make(map[string]bool, len(nicknames))
	for _, g := range nicknames {
		t[g] = true
	}
	return t
}()
