"""Unanswerable questions of eval-dev's own kind (encyclopedia reading comprehension), written for
this bench and never used for fitting: the wiki is eval-dev's 150 pages (read by path), the
questions ask about people, places and things none of those pages covers."""
import json
Q = [
("zh","敦煌莫高窟最早开凿于哪个朝代？","莫高窟"),
("zh","京杭大运河全长多少公里？","运河"),
("zh","李白的出生地是哪里？","李白"),
("zh","青藏铁路于哪一年全线通车？","青藏铁路"),
("zh","大熊猫主要以什么为食？","大熊猫"),
("zh","故宫博物院是哪一年成立的？","故宫"),
("zh","黄山的最高峰叫什么名字？","黄山"),
("zh","《红楼梦》的作者是谁？","红楼梦"),
("zh","港珠澳大桥全长多少公里？","港珠澳"),
("zh","鲁迅的原名是什么？","鲁迅"),
("zh","西湖位于哪个城市？","西湖"),
("zh","三峡大坝的装机容量是多少？","三峡"),
("zh","台北101大楼有多少层？","台北101"),
("zh","麻婆豆腐起源于哪个地方？","麻婆豆腐"),
("zh","徐霞客游记记录了哪些地方？","徐霞客"),
("zh","哈尔滨冰雪大世界每年什么时候开放？","冰雪大世界"),
("zh","长白山天池的海拔是多少？","天池"),
("zh","郑和第一次下西洋是在哪一年？","郑和"),
("zh","东方明珠电视塔高多少米？","东方明珠"),
("zh","苏轼被贬到黄州后写了哪些作品？","苏轼"),
("zh","日本新干线最早开通的是哪条线路？","新干线"),
("zh","兵马俑是在哪一年被发现的？","兵马俑"),
("zh","昆曲被列为世界非物质文化遗产是在哪一年？","昆曲"),
("zh","中国第一颗人造卫星叫什么名字？","人造卫星"),
("en","In what year did the Berlin Wall fall?","Berlin"),
("en","Who painted the ceiling of the Sistine Chapel?","Sistine"),
("en","What is the tallest mountain in Africa?","Kilimanjaro"),
("en","When was the Panama Canal opened?","Panama"),
("en","Which element has the chemical symbol Fe?","chemical symbol"),
("en","How many moons does Mars have?","Mars"),
]
with open("unanswerable.jsonl","w") as f:
    for i,(l,q,_) in enumerate(Q):
        f.write(json.dumps({"id":f"edq-u{i+1:03d}","question":q,"answer":None,"doc_id":None,"lang":l,"kind":"near_miss" if _ in ("青藏铁路","新干线") else "off_domain"},ensure_ascii=False)+"\n")
print(len(Q))
